package security

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sandbox/tests/internal/nettest"
)

// Every call is answered, even when the supervisor runs out of descriptors.
// The sandbox runs under a hard RLIMIT_NOFILE of 100; the program parks 90
// blocking connects on a tarpit, so the supervisor holds 90 duplicates, and
// then makes 20 connects, 20 sendtos and 20 sendmsgs, each from a new
// thread (a thread the supervisor has not seen: its /proc entry must be
// read, which needs a descriptor). Each must return within the bound, with
// success or the documented resource errno: EAGAIN for connect, ENOBUFS for
// the sends. (Before the fix, the failed /proc read was taken for "the
// caller is gone" and the first extra connect was never answered.)
func TestEveryCallAnswered(t *testing.T) {
	sb := nettest.BuildSandbox(t)
	prog := nettest.CompileC(t, filepath.Join("testdata", "answered.c"), false)
	for _, who := range []string{"root", "nobody"} {
		t.Run(who, func(t *testing.T) {
			n := nettest.NewNetns(t)
			argv := []string{"prlimit", "--nofile=100:100"}
			if who == "nobody" {
				argv = append(argv, asNobody(sb, prog)...)
			}
			argv = append(argv, sb, "run", "--allow-all", "--log-level", "error", "--", prog, "90", "20")
			start := time.Now()
			r := n.Run(2*time.Minute, argv...)
			if r.TimedOut || !strings.Contains(r.Stdout, "done\n") {
				t.Fatalf("a call was never answered (after %v): %v\nstdout:\n%s", time.Since(start).Round(time.Millisecond), r, r.Stdout)
			}
			t.Logf("answered in %v:\n%s", time.Since(start).Round(time.Millisecond), r.Stdout)
			allowed := map[string][]int{
				"parked-returned": {int(unix.EAGAIN)},
				"connect":         {0, int(unix.EAGAIN)},
				"sendto":          {0, int(unix.ENOBUFS)},
				"sendmsg":         {0, int(unix.ENOBUFS)},
			}
			short := 0
			for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
				f := strings.Fields(line)
				ok, known := allowed[f[0]]
				if !known {
					continue
				}
				for _, kv := range f[1:] {
					e, count, _ := strings.Cut(kv, ":")
					errno, _ := strconv.Atoi(e)
					if !contains(ok, errno) {
						t.Errorf("%s: %d calls returned errno %d, want one of %v", f[0], atoi(count), errno, ok)
					}
					if errno != 0 {
						short += atoi(count)
					}
				}
			}
			// The test can fail: the supervisor must really have run out.
			if short == 0 {
				t.Fatalf("no call met the supervisor's descriptor limit: the test proves nothing")
			}
			if !strings.Contains(r.Stderr, "too many open files") {
				t.Errorf("want the supervisor's EMFILE logged as an internal error:\n%s", r.Stderr)
			}
		})
	}
}

// PROGRAM keeps the soft RLIMIT_NOFILE it was started with: Go raises the
// supervisor's soft limit to the hard one, and must put it back for the
// program (syscall.Exec and os.StartProcess do).
func TestProgramKeepsItsFileLimit(t *testing.T) {
	sb := nettest.BuildSandbox(t)
	const script = "ulimit -Sn; ulimit -Hn"
	native := nettest.Run(time.Minute, "prlimit", "--nofile=50:100", "sh", "-c", script)
	boxed := nettest.Run(time.Minute, "prlimit", "--nofile=50:100", sb, "run", "--", "sh", "-c", script)
	if native.Stdout != "50\n100\n" || boxed.Stdout != native.Stdout {
		t.Fatalf("native %q, sandboxed %q (want 50 and 100 both)\n%v", native.Stdout, boxed.Stdout, boxed)
	}
}

// One hung path stalls only its own caller. Process A connects (or sends a
// datagram) to a path in a FUSE mount whose server never answers: natively A blocks in the lookup.
// Meanwhile process B makes 200 allowed connects, which must all finish
// while A is still blocked: the lookup may not hold the supervisor's receive
// thread. Then the FUSE connection is aborted, A returns, and its errno
// must be the native one.
//
// As nobody, A's lookup is made on a credential thread (credthread.c) that
// carries nobody's credentials, and the receive thread waits for it: that
// wait too may stall only A.
func TestHungPathStallsOnlyItsCaller(t *testing.T) {
	nettest.RequireRoot(t)
	sb := nettest.BuildSandbox(t)
	prog := nettest.CompileC(t, filepath.Join("testdata", "hungpath.c"), false)
	for _, who := range []string{"root", "nobody"} {
		for _, mode := range []string{"connect", "sendto"} {
			t.Run(who+"/"+mode, func(t *testing.T) {
				var as []string
				if who == "nobody" {
					as = asNobody(sb, prog)
				}
				native := hungPath(t, append(append([]string{}, as...), prog), mode)
				boxed := hungPath(t, append(append([]string{sb, "run", "--allow-all", "--log-level", "error", "--"}, as...), prog), mode)
				if boxed != native {
					t.Errorf("A's %s as %s: sandboxed %s, native %s", mode, who, boxed, native)
				}
				t.Logf("A's %s as %s after the abort: %s (native and sandboxed)", mode, who, native)
			})
		}
	}
}

// hungPath runs argv with a path in a fresh, never-answered FUSE mount and
// returns what A's connect returned once the mount was aborted.
func hungPath(t *testing.T, argv []string, mode string) string {
	t.Helper()
	dir, abort := hungFUSE(t)
	// Searchable for nobody up to the mount (never the mount itself: that
	// would wait for the server).
	for d := filepath.Dir(dir); d != "/" && d != "/tmp"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	cmd := exec.Command(argv[0], append(argv[1:], filepath.Join(dir, "sock"), mode)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := startPiped(t, cmd)
	defer func() {
		abort()
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	}()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func(re *regexp.Regexp, within time.Duration) ([]string, bool) {
		deadline := time.After(within)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					return nil, false
				}
				t.Logf("%s: %s", filepath.Base(argv[0]), l)
				if m := re.FindStringSubmatch(l); m != nil {
					return m, true
				}
			case <-deadline:
				return nil, false
			}
		}
	}
	start := time.Now()
	m, ok := next(regexp.MustCompile(`^B done; A (.*)$`), 30*time.Second)
	if !ok {
		t.Fatalf("%s: B's connects did not finish within 30 s while A was blocked", argv[0])
	}
	if m[1] != "still blocked" {
		t.Fatalf("%s: A %s before the FUSE connection was aborted: the test proves nothing", argv[0], m[1])
	}
	t.Logf("%s: B finished in %v while A was blocked", filepath.Base(argv[0]), time.Since(start).Round(time.Millisecond))
	abort()
	m, ok = next(regexp.MustCompile(`^A: errno=(\d+)$`), 20*time.Second)
	if !ok {
		t.Fatalf("%s: A did not return within 20 s of the abort", argv[0])
	}
	e, _ := strconv.Atoi(m[1])
	return fmt.Sprintf("%d (%v)", e, unix.Errno(e))
}

// startPiped starts cmd, its stderr the test's, and returns its stdout.
func startPiped(t *testing.T, cmd *exec.Cmd) io.Reader {
	t.Helper()
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return out
}

// hungFUSE mounts a FUSE file system whose server never answers (not even
// FUSE_INIT: every request waits) and returns its directory and a function
// that aborts the connection (idempotent; also run at cleanup).
func hungFUSE(t *testing.T) (string, func()) {
	t.Helper()
	dir := t.TempDir()
	fd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no FUSE: %v", err)
	}
	// allow_other: a caller other than root reaches the server too (and
	// waits for it) rather than being refused at once.
	opts := fmt.Sprintf("fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other", fd)
	if err := unix.Mount("fuse", dir, "fuse", 0, opts); err != nil {
		unix.Close(fd)
		t.Skipf("mount fuse: %v", err)
	}
	// The connection's name is the mount's device number (never stat the
	// mount: that would wait for the server too).
	conn := ""
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
				if _, minor, ok := strings.Cut(f[2], ":"); ok {
					conn = minor
				}
			}
		}
	}
	done := false
	abort := func() {
		if done {
			return
		}
		done = true
		// Through fusectl when it is mounted; closing the last descriptor
		// of the device aborts the connection as well (fuse_dev_release).
		if conn != "" {
			os.WriteFile("/sys/fs/fuse/connections/"+conn+"/abort", []byte("1"), 0)
		}
		unix.Close(fd)
		unix.Unmount(dir, unix.MNT_DETACH)
	}
	t.Cleanup(abort) // runs before TempDir's removal
	return dir, abort
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// A call is finished exactly once, whoever resumes it. A blocking sendmmsg
// whose first message waits for room (in the waiter) and whose second
// names a Unix path must return 2 with the second datagram delivered, as
// natively: the waiter resolves that path itself rather than handing the
// call on (it would have answered 0 and finished the call a second time).
func TestSendmmsgResumedToAPath(t *testing.T) {
	sb := nettest.BuildSandbox(t)
	prog := nettest.CompileC(t, filepath.Join("testdata", "mmsgpath.c"), false)
	native := nettest.Run(time.Minute, prog, t.TempDir())
	boxed := nettest.Run(time.Minute, sb, "run", "--allow-all", "--log-level", "error", "--", prog, t.TempDir())
	const want = "filled>0=1 sendmmsg=2 r2=1:2\n"
	if native.Stdout != want || boxed.Stdout != want {
		t.Fatalf("want %q\nnative %v: %q\nsandboxed %v: %q", want, native, native.Stdout, boxed, boxed.Stdout)
	}
}

// A page that never arrives stalls only its own caller. Thread A's connect,
// sendto or sendmsg has its argument in a page that a userfaultfd of the
// program registers and nobody serves yet: natively A waits in its own
// copy_from_user; sandboxed, the supervisor's process_vm_readv of A's memory
// waits the same way. Meanwhile thread B makes 200 connects to a listener
// of its own, which must all finish while A waits; then B serves the fault
// and A's call must end as natively (errno 0, the datagram delivered).
// Before the fix the read was a raw system call outside the watchdog's
// view: the receive thread, and its Go processor, waited with A, and B's
// first connect was never answered.
//
// The waiter case (testdata/hungwaiter.c) is the same wait on the waiter's
// side: A's sendmmsg parks for room, and once it has room its second
// header is on the page; meanwhile C's blocking connect to a full backlog,
// parked too, must end with EAGAIN at its 300 ms SO_SNDTIMEO, as natively.
// Before the fix the waiter served A on its only goroutine, and C waited
// until A's page arrived.
//
// The socklock case holds the socket's lock instead: thread P sends on a
// connected TCP socket from the unserved page (tcp_sendmsg copies under
// lock_sock), and A's second connect on that socket waits for the lock,
// natively in A and sandboxed in the supervisor's connect; once the page
// arrives, EISCONN. Before the fix that connect was a raw system call.
//
// The fasync case: A's blocking Unix connect waits for room in a full
// backlog; meanwhile the program sets O_ASYNC on A's socket and thread P
// holds the socket's lock in a setsockopt(SO_ATTACH_FILTER) whose filter is
// on the page. A retry that wrote A's old flags back cleared O_ASYNC:
// setfl calls sock_fasync, which waits for the lock (a raw fcntl, before the
// fix), and the program's O_ASYNC was lost ("arrived" is the flag).
//
// Everything runs under taskset -c 0: the supervisor's GOMAXPROCS is then
// 1, so a wait that holds its Go processor stops it whole, as a garbage
// collection's stop of the world would with any GOMAXPROCS.
//
// As root the program opens /dev/userfaultfd itself (Docker's default
// capabilities keep the DAC override it needs); as nobody it is handed an
// open /dev/userfaultfd (a userfaultfd(2) of an unprivileged process
// handles user-mode faults only, which a remote read does not make).
func TestHungMemoryStallsOnlyItsCaller(t *testing.T) {
	nettest.RequireRoot(t)
	if _, err := os.Stat("/dev/userfaultfd"); err != nil {
		t.Skipf("no /dev/userfaultfd: %v", err)
	}
	sb := nettest.BuildSandbox(t)
	mem := nettest.CompileC(t, filepath.Join("testdata", "hungmem.c"), false)
	waiter := nettest.CompileC(t, filepath.Join("testdata", "hungwaiter.c"), false)
	policies := map[string][]string{
		"default": nil,
		"rules":   {"--allow", "tcp:127.0.0.1", "--allow", "udp:127.0.0.1", "--allow", "unix:@hungwaiter-*", "--allow", "unix:@hungmem-*"},
	}
	for _, who := range []string{"root", "nobody"} {
		for _, pol := range []string{"default", "rules"} {
			for _, mode := range []string{"connect", "sendto", "sendmsg", "socklock", "fasync", "waiter"} {
				t.Run(who+"/"+pol+"/"+mode, func(t *testing.T) {
					t.Parallel()
					prog, args := mem, []string{mode}
					if mode == "waiter" {
						prog, args = waiter, nil
					}
					n := nettest.NewNetns(t)
					run := func(argv ...string) string {
						argv = append([]string{"taskset", "-c", "0"}, argv...)
						if who == "nobody" {
							// fd 3: /dev/userfaultfd, opened by root.
							argv = append([]string{"sh", "-c", `exec "$@" 3</dev/userfaultfd`, "sh"},
								append(asNobody(sb, prog), argv...)...)
						}
						r := n.Run(30*time.Second, argv...)
						if r.TimedOut || r.ExitCode != 0 {
							t.Fatalf("%v (a call never answered times out)\nstdout:\n%s", r, r.Stdout)
						}
						return r.Stdout
					}
					native := run(append([]string{prog}, args...)...)
					flags := []string{sb, "run", "--log-level", "error"}
					if who == "nobody" {
						flags = append(flags, "--preserve-fds", "1")
					}
					boxed := run(append(append(append(flags, policies[pol]...), "--", prog), args...)...)
					want := "B: 200/200 connected\nB done; A still blocked\nA: errno=0 arrived=1\n"
					switch mode {
					case "socklock":
						want = "B: 200/200 connected\nB done; A still blocked\nA: errno=106 arrived=1\n" // EISCONN
					case "waiter":
						want = "C: errno=11 within 5 s: yes\nA: sendmmsg=2 errno=0; R got every datagram\n"
					}
					if native != want {
						t.Fatalf("natively:\n%s\nwant:\n%s(the test proves nothing)", native, want)
					}
					if boxed != native {
						t.Fatalf("sandboxed:\n%s\nnatively:\n%s", boxed, native)
					}
				})
			}
		}
	}
}
