// Package security holds the attack suite: programs that try to get around
// the supervisor, each of which must fail.
package security

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"sandbox/tests/internal/nettest"
)

func TestMain(m *testing.M) { os.Exit(nettest.Main(m)) }

// The program runs as the same unprivileged user as its supervisor, the
// case the supervisor's own defences are for: a root program with
// CAP_SYS_PTRACE can ptrace anything and is out of scope (README).
func TestAttacksOnTheSupervisorFail(t *testing.T) {
	nettest.RequireRoot(t) // to run the whole sandbox as nobody
	sb := nettest.BuildSandbox(t)
	prog := nettest.CompileC(t, filepath.Join("testdata", "attacks.c"), false)
	nobody := asNobody(sb, prog)
	r := nettest.Run(time.Minute, append(nobody, sb, "run", "--log-level", "error", "--", prog)...)
	native := nettest.Run(time.Minute, append(nobody, prog)...)
	if r.ExitCode != 0 || native.ExitCode != 0 {
		t.Fatalf("sandboxed: %v\nnative: %v", r, native)
	}
	want := map[string]string{
		"io_uring_setup":              "ENOSYS",
		"raw_icmp_socket":             "EPERM", // nobody natively too: the test below runs as root
		"packet_socket":               "EPERM",
		"ptrace_attach_supervisor":    "EPERM",
		"process_vm_readv_supervisor": "EPERM",
		"pidfd_getfd_supervisor":      "EPERM",
		"open_supervisor_mem":         "EACCES",
	}
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		if k, v, ok := strings.Cut(l, ": "); ok {
			got[k] = v
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q, want %q\nfull output:\n%s", k, got[k], v, r.Stdout)
		}
	}
	// Descriptors: none of the sandbox's own, and nothing inherited above 2
	// (natively the program may inherit some: the fds layer closes them).
	if got["fds"] != "0 1 2" {
		t.Errorf("descriptors under the sandbox %q, want 0 1 2 (natively: %q)", got["fds"], native.Stdout[strings.Index(native.Stdout, "fds:"):])
	}
}

// Raw and packet sockets are refused at socket() with the errno a missing
// CAP_NET_RAW gives, even to a root program: by the kernel, once the
// capability is dropped, or by the filter when the program keeps it
// (--keep-caps); --raw-sockets allows them.
func TestRawSocketsRefused(t *testing.T) {
	nettest.RequireRoot(t)
	sb := nettest.BuildSandbox(t)
	prog := nettest.CompileC(t, filepath.Join("testdata", "attacks.c"), false)
	native := nettest.Run(time.Minute, prog, "sockets")
	denied := nettest.Run(time.Minute, sb, "run", "--log-level", "error", "--", prog, "sockets")
	kept := nettest.Run(time.Minute, sb, "run", "--log-level", "error", "--keep-caps", "--", prog, "sockets")
	allowed := nettest.Run(time.Minute, sb, "run", "--log-level", "error", "--raw-sockets", "--", prog, "sockets")
	for _, line := range []string{"raw_icmp_socket: ", "packet_socket: "} {
		if !strings.Contains(native.Stdout, line+"succeeded") {
			t.Fatalf("natively, root should get %q:\n%s", line, native.Stdout)
		}
		if !strings.Contains(denied.Stdout, line+"EPERM") {
			t.Errorf("under the sandbox: want %sEPERM:\n%s", line, denied.Stdout)
		}
		if !strings.Contains(kept.Stdout, line+"EPERM") {
			t.Errorf("with --keep-caps: want %sEPERM:\n%s", line, kept.Stdout)
		}
		if !strings.Contains(allowed.Stdout, line+"succeeded") {
			t.Errorf("with --raw-sockets: want %ssucceeded:\n%s", line, allowed.Stdout)
		}
	}
}

// Foreign ABIs never pass unfiltered: x32 and i386 syscalls kill the
// process.
func TestForeignABIsAreKilled(t *testing.T) {
	sb := nettest.BuildSandbox(t)
	prog := nettest.CompileC(t, filepath.Join("testdata", "abi.c"), false)
	for _, abi := range []string{"x32", "i386"} {
		r := nettest.Run(time.Minute, sb, "run", "--", prog, abi)
		if r.Signal != 0 || r.ExitCode != 128+31 { // SIGSYS, reported by the sandbox
			t.Errorf("%s: %v, want exit 159 (SIGSYS)", abi, r)
		}
	}
}

// If the supervisor dies (killed from outside: the program itself may not
// signal it, see TestOutsideProcessesUnreachable), every trapped call
// afterwards fails with ENOSYS: connect, sendmsg and sendto never pass. The
// program's own attempt to kill its supervisor gets EPERM; with
// --landlock=false it succeeds, and the calls after it fail the same way.
func TestDeadSupervisorFailsClosed(t *testing.T) {
	sb := nettest.BuildSandbox(t)
	prog := nettest.CompileC(t, filepath.Join("testdata", "orphaned.c"), false)
	after := "after=-1 errno=ENOSYS\nsendmsg_after=-1 errno=ENOSYS\nsendto_after=-1 errno=ENOSYS\n"
	for _, c := range []struct {
		flag, kill  string
		fromOutside bool
	}{
		{"--landlock=true", "kill_supervisor=-1 errno=EPERM", true},
		{"--landlock=false", "kill_supervisor=0 errno=0", false},
	} {
		t.Run(c.flag, func(t *testing.T) {
			cmd := exec.Command(sb, "run", "--allow-all", "--log-level", "error", c.flag, "--", prog)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			timer := time.AfterFunc(time.Minute, func() { cmd.Process.Kill() })
			defer timer.Stop()
			rd := bufio.NewReader(out)
			var got strings.Builder
			for !strings.HasSuffix(got.String(), "waiting\n") {
				line, err := rd.ReadString('\n')
				got.WriteString(line)
				if err != nil {
					t.Fatalf("program ended before waiting: %q", got.String())
				}
			}
			if c.fromOutside {
				cmd.Process.Kill()
			}
			rest, _ := io.ReadAll(rd) // until the orphaned program exits
			got.Write(rest)
			cmd.Wait()
			if ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Errorf("sandbox %v, want it killed (SIGKILL)", cmd.ProcessState)
			}
			want := "before=0 errno=0\n" + c.kill + "\nwaiting\n" + after
			if got.String() != want {
				t.Errorf("stdout %q, want %q", got.String(), want)
			}
		})
	}
}
