package security

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sandbox/tests/internal/nettest"
)

// The supervisor caches a socket's family and type by SO_COOKIE (sentry
// sockIDs). testdata/sockid.c attacks that cache, as root and as nobody:
// IPV6_ADDRFORM turns a socket the supervisor has seen as AF_INET6 into
// AF_INET under the same cookie, then sends AF_UNSPEC bytes naming a
// forbidden port (read as AF_INET by udp_sendmsg); and threads race sends
// to the forbidden port on fd 100 against a thread that keeps replacing fd
// 100 with sockets of other families and types (dup2 over it, close and
// reopen). Nothing may arrive at the forbidden port. The allowed sends of
// the race must get through (the race ran), and the control, which allows
// the port, shows the same sends do arrive when allowed.
func TestSocketIdentityCacheCannotBeConfused(t *testing.T) {
	nettest.RequireRoot(t)
	sb := nettest.BuildSandbox(t)
	prog := nettest.CompileC(t, filepath.Join("testdata", "sockid.c"), false)
	iters := "20000"
	if testing.Short() {
		iters = "3000"
	}
	for _, u := range users {
		for _, control := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/control=%v", u.name, control), func(t *testing.T) {
				allowed, atAllowed := udpCounter(t)
				forbidden, atForbidden := udpCounter(t)
				policy := []string{"--allow", fmt.Sprintf("udp:127.0.0.1:%d", allowed)}
				if control {
					policy = append(policy, "--allow", fmt.Sprintf("udp:127.0.0.1:%d", forbidden))
				}
				var argv []string
				if u.nobody {
					argv = asNobody(sb, prog)
				}
				argv = append(append(append(argv, sb, "run", "--log-level", "error"), policy...),
					"--", prog, strconv.Itoa(allowed), strconv.Itoa(forbidden), iters)
				r := nettest.Run(3*time.Minute, argv...)
				if r.ExitCode != 0 {
					t.Fatalf("%v", r)
				}
				time.Sleep(300 * time.Millisecond) // let the receivers drain
				got := results(r.Stdout)
				t.Logf("%s; arrived: allowed %d, forbidden %d", r.Stdout, atAllowed.Load(), atForbidden.Load())
				if got["addrform"] != "ok" {
					t.Fatalf("IPV6_ADDRFORM: %s: the attack did not run", got["addrform"])
				}
				if atoi(got["race_allowed_ok"]) == 0 || atAllowed.Load() == 0 {
					t.Fatalf("no allowed send got through: the race proves nothing")
				}
				if !control {
					if n := atForbidden.Load(); n != 0 {
						t.Errorf("%d datagrams reached the forbidden port", n)
					}
					// (An AF_UNSPEC send of the race may succeed: on an
					// AF_INET6 socket it goes to the connected peer, the
					// allowed port, as natively.)
					if got["addrform_sent"] != "0" {
						t.Errorf("after IPV6_ADDRFORM, %s AF_UNSPEC sends to the forbidden port were answered as sent", got["addrform_sent"])
					}
					return
				}
				if atoi(got["addrform_sent"]) == 0 || atoi(got["race_forbidden_ok"]) == 0 || atForbidden.Load() == 0 {
					t.Errorf("allowed, the forbidden port's sends did not arrive: the attack proves nothing")
				}
			})
		}
	}
}

// portChecker counts the datagrams that reach 127.0.0.1:port, and those
// whose source port is not the port their payload names ("PORT TID").
func portChecker(t *testing.T) (port int, got, wrong *atomic.Int64) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadBuffer(8 << 20)
	t.Cleanup(func() { c.Close() })
	got, wrong = new(atomic.Int64), new(atomic.Int64)
	go func() {
		buf := make([]byte, 64)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			got.Add(1)
			named, _, _ := strings.Cut(string(buf[:n]), " ")
			if named != strconv.Itoa(from.Port) {
				wrong.Add(1)
			}
		}
	}()
	return c.LocalAddr().(*net.UDPAddr).Port, got, wrong
}

// The supervisor caches a PIDFD_THREAD pidfd per thread and a tid -> tgid
// hint (sentry tracees). testdata/tidreuse.c runs in a pid namespace whose
// pid_max is 400 (the least Linux takes is 301), so thread ids come back within seconds, as threads of
// other processes: each round three children at once bind their own UDP
// socket at fd 100, and their threads, one after the other, send their
// port from fd 100.
// A send performed on the socket of a thread that held the tid before
// would leave from another child's port: none may (as root and as nobody),
// and nothing may reach the forbidden port; the control allows that port,
// where the same sends arrive. The run must have reused tids.
func TestThreadPidfdCacheAcrossTidReuse(t *testing.T) {
	nettest.RequireRoot(t)
	sb := nettest.BuildSandbox(t)
	prog := nettest.CompileC(t, filepath.Join("testdata", "tidreuse.c"), false)
	rounds := "300"
	if testing.Short() {
		rounds = "100"
	}
	for _, u := range users {
		for _, control := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/control=%v", u.name, control), func(t *testing.T) {
				dest, got, wrong := portChecker(t)
				forbidden, atForbidden := udpCounter(t)
				policy := []string{"--allow", fmt.Sprintf("udp:127.0.0.1:%d", dest)}
				if control {
					policy = append(policy, "--allow", fmt.Sprintf("udp:127.0.0.1:%d", forbidden))
				}
				argv := []string{"unshare", "--pid", "--fork", "--mount-proc", "sh", "-c",
					`echo 400 > /proc/sys/kernel/pid_max && exec "$@"`, "sh"}
				if u.nobody {
					argv = append(argv, asNobody(sb, prog)...)
				}
				argv = append(append(append(argv, sb, "run", "--log-level", "error"), policy...),
					"--", prog, strconv.Itoa(dest), strconv.Itoa(forbidden), rounds, "4")
				r := nettest.Run(3*time.Minute, argv...)
				if r.ExitCode != 0 {
					t.Fatalf("%v", r)
				}
				time.Sleep(300 * time.Millisecond) // let the receivers drain
				res := results(r.Stdout)
				t.Logf("%s; arrived: %d (%d from another socket), forbidden %d", r.Stdout, got.Load(), wrong.Load(), atForbidden.Load())
				if atoi(res["reused"]) == 0 {
					t.Fatalf("no thread id came back: the test proves nothing")
				}
				if want := 2 * 3 * atoi(rounds) * 4; atoi(res["sent"]) != want {
					t.Errorf("%s allowed sends were answered as sent, want all %d", res["sent"], want)
				}
				if n := wrong.Load(); n != 0 {
					t.Errorf("%d datagrams left from another thread's socket", n)
				}
				if n := atForbidden.Load(); !control && n != 0 {
					t.Errorf("%d datagrams reached the forbidden port", n)
				}
				if control && atForbidden.Load() == 0 {
					t.Errorf("allowed, the sends to the other port did not arrive: the test proves nothing")
				}
			})
		}
	}
}
