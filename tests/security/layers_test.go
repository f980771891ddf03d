package security

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sandbox/tests/internal/nettest"
)

// The layers beyond the filter (sentry/layers.go). Every attack counts what
// reached an endpoint the program may not reach; every control shows the
// same program arriving when the layer is off.

// victim is testdata/victim.c, started outside the sandbox.
type victim struct{ pid, addr, fd string }

func startVictim(t *testing.T, prefix []string, port int) victim {
	t.Helper()
	bin := nettest.CompileC(t, filepath.Join("testdata", "victim.c"), false)
	argv := append(append([]string{}, prefix...), bin, fmt.Sprint(port))
	cmd := exec.Command(argv[0], argv[1:]...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("victim: %v", err)
	}
	var v victim
	if _, err := fmt.Sscanf(line, "pid=%s addr=%s fd=%s", &v.pid, &v.addr, &v.fd); err != nil {
		t.Fatalf("victim said %q: %v", line, err)
	}
	return v
}

// arrivals waits a little for the victim's loop (5 ms) and returns how many
// bytes reached the counter since before.
func arrivals(bytes *atomic.Int64, before int64) int64 {
	time.Sleep(150 * time.Millisecond)
	return bytes.Load() - before
}

// Class 6: a same-uid process outside the sandbox cannot be ptraced,
// written, robbed of its descriptors or signalled, so it cannot be made to
// connect for the program. As root the capability layer alone already
// refuses ptrace (the victim's capabilities are no subset of the program's,
// cap_ptrace_access_check), so Landlock is shown alone with --keep-caps.
func TestOutsideProcessesUnreachable(t *testing.T) {
	nettest.RequireRoot(t)
	sb := nettest.BuildSandbox(t)
	prog := nettest.CompileC(t, filepath.Join("testdata", "outside.c"), false)
	modes := map[string]string{
		"ptrace_attach": "EPERM", "ptrace_seize": "EPERM", "process_vm_writev": "EPERM",
		"proc_mem": "EACCES", "pidfd_getfd": "EPERM", "kill": "EPERM",
	}
	for _, user := range []string{"root", "nobody"} {
		t.Run(user, func(t *testing.T) {
			port, _, bytes := tcpCounter(t)
			var prefix []string
			if user == "nobody" {
				prefix = asNobody(sb, prog)
			}
			v := startVictim(t, prefix, port)
			sandboxed := [][]string{{}, {"--allow-all"}, {"--keep-caps"}}
			control := []string{"--landlock=false"}
			if user == "root" {
				control = append(control, "--keep-caps")
			}
			var attacked, controlled int64
			for mode, want := range modes {
				args := []string{mode, v.pid, v.addr, v.fd, fmt.Sprint(port)}
				for _, flags := range sandboxed {
					before := bytes.Load()
					argv := append(append(append(append([]string{}, prefix...), sb, "run", "--log-level", "error"), flags...), "--", prog)
					r := nettest.Run(time.Minute, append(argv, args...)...)
					if got := strings.TrimSpace(r.Stdout); got != mode+": "+want {
						t.Errorf("%s %v: %q, want %s\n%v", mode, flags, got, want, r)
					}
					n := arrivals(bytes, before)
					attacked += n
					if n != 0 {
						t.Errorf("%s %v: %d bytes reached the forbidden counter, want 0", mode, flags, n)
					}
				}
				// Controls: natively, and with the layer off, it arrives.
				for _, argv := range [][]string{
					append(append([]string{}, prefix...), prog),
					append(append(append(append([]string{}, prefix...), sb, "run", "--log-level", "error"), control...), "--", prog),
				} {
					before := bytes.Load()
					r := nettest.Run(time.Minute, append(argv, args...)...)
					n := arrivals(bytes, before)
					controlled += n
					if strings.TrimSpace(r.Stdout) != mode+": ok" || n != 1 {
						t.Errorf("control %s %q: %q, %d bytes arrived, want ok and 1\n%v", mode, argv, r.Stdout, n, r)
					}
				}
			}
			t.Logf("%s: %d bytes arrived under %d attacks, %d under %d control runs", user,
				attacked, len(modes)*len(sandboxed), controlled, 2*len(modes))
		})
	}
}

// runWithFiles runs argv with files as fds 3, 4, ... and returns stdout.
func runWithFiles(t *testing.T, files []*os.File, argv ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.ExtraFiles = files
	var stderr strings.Builder
	cmd.Stderr = &stderr
	timer := time.AfterFunc(time.Minute, func() { cmd.Process.Kill() })
	defer timer.Stop()
	out, err := cmd.Output()
	if err != nil {
		err = fmt.Errorf("%v: %v\n%s", argv, err, stderr.String())
	}
	return string(out), err
}

// connectedFiles dials the counter n times and returns the sockets as files.
func connectedFiles(t *testing.T, port, n int) []*os.File {
	t.Helper()
	var files []*os.File
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		f, err := c.(*net.TCPConn).File()
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		files = append(files, f)
	}
	return files
}

// Class 7: sockets connected before the sandbox started (fds 3, 4 and 5)
// do not reach PROGRAM; --preserve-fds 3 passes them, as podman and runc do.
func TestInheritedDescriptorsClosed(t *testing.T) {
	nettest.RequireRoot(t)
	sb := nettest.BuildSandbox(t)
	prog := nettest.CompileC(t, filepath.Join("testdata", "fdwrite.c"), false)
	for _, user := range []string{"root", "nobody"} {
		t.Run(user, func(t *testing.T) {
			var prefix []string
			if user == "nobody" {
				prefix = asNobody(sb, prog)
			}
			port, _, bytes := tcpCounter(t)
			files := connectedFiles(t, port, 3)
			for _, c := range []struct {
				flags   []string
				written string
				arrive  int64
			}{
				{nil, "written=0", 0},
				{[]string{"--allow-all"}, "written=0", 0},
				{[]string{"--preserve-fds", "1"}, "written=1", 1},
				{[]string{"--preserve-fds", "3"}, "written=3", 3}, // control
			} {
				before := bytes.Load()
				argv := append(append(append(append([]string{}, prefix...), sb, "run", "--log-level", "error"), c.flags...), "--", prog)
				out, err := runWithFiles(t, files, argv...)
				if err != nil {
					t.Fatal(err)
				}
				n := arrivals(bytes, before)
				if strings.TrimSpace(out) != c.written || n != c.arrive {
					t.Errorf("%v: %q and %d bytes arrived, want %s and %d", c.flags, out, n, c.written, c.arrive)
				}
				t.Logf("%v: %d bytes arrived", c.flags, n)
			}
		})
	}
}
