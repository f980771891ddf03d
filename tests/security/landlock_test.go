package security

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"sandbox/tests/internal/nettest"
)

// abstractCounters listens on a fresh abstract stream name and a fresh
// abstract datagram name, outside the sandboxed tree, and counts what
// arrives.
func abstractCounters(t *testing.T) (stream, dgram string, conns, dgrams *atomic.Int64) {
	stream = fmt.Sprintf("sbx-ll-stream-%d", time.Now().UnixNano())
	dgram = fmt.Sprintf("sbx-ll-dgram-%d", time.Now().UnixNano())
	l, err := net.Listen("unix", "@"+stream)
	if err != nil {
		t.Fatal(err)
	}
	conns = countAccepts(t, l)
	pc, err := net.ListenPacket("unixgram", "@"+dgram)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	dgrams = new(atomic.Int64)
	go func() {
		buf := make([]byte, 64)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			dgrams.Add(1)
		}
	}()
	return stream, dgram, conns, dgrams
}

// bAttempts are the ways testdata/landlock.c tries port B.
var bAttempts = []string{"b", "b_nonblock", "b_mapped6", "b_after_unspec", "b_child", "b_thread"}

// abstractAttempts are the ways it tries the abstract sockets outside.
var abstractAttempts = []string{"abstract_stream", "abstract_sendto", "abstract_sendmsg", "abstract_dgram_connect"}

// TestProgramLandlockHolds: a program that allows itself TCP connects to
// port A only, and scopes abstract Unix sockets, reaches neither port B nor
// an abstract socket outside its domain under the sandbox, whatever the
// sandbox's policy allows: the supervisor performs those calls outside the
// program's Landlock domain, so it must apply the program's layers itself.
// The control run (no self-restriction) arrives, so the test can fail.
func TestProgramLandlockHolds(t *testing.T) {
	nettest.RequireRoot(t)
	sb := nettest.BuildSandbox(t)
	prog := nettest.CompileC(t, filepath.Join("testdata", "landlock.c"), false)
	for _, user := range []string{"root", "nobody"} {
		for _, pol := range []string{"allow-all", "default", "rules"} {
			t.Run(user+"/"+pol, func(t *testing.T) {
				portA, _ := countingListener(t)
				portB, arrivedB := countingListener(t)
				stream, dgram, conns, dgrams := abstractCounters(t)
				var policy []string
				b := strconv.Itoa(portB)
				switch pol {
				case "allow-all":
					policy = []string{"--allow-all"}
				case "default":
					// The tree's own listeners: "self" allows them.
					b = "own"
				case "rules":
					policy = []string{"--allow", fmt.Sprintf("tcp:127.0.0.1:%d", portA),
						"--allow", fmt.Sprintf("tcp:127.0.0.1:%d", portB), "--allow", "unix:@sbx-ll-*"}
				}
				run := func(mode string) map[string]string {
					argv := append(append([]string{sb, "run", "--log-level", "error"}, policy...),
						"--", prog, mode, strconv.Itoa(portA), b, stream, dgram)
					if user == "nobody" {
						argv = append(asNobody(sb, prog), argv...)
					}
					r := nettest.Run(time.Minute, argv...)
					if r.ExitCode != 0 {
						t.Fatalf("%s run: %v", mode, r)
					}
					return results(r.Stdout)
				}

				got := run("restrict")
				time.Sleep(200 * time.Millisecond) // let the counters drain
				if got["a"] != "ok" {
					t.Errorf("restricted: port A: got %q, want ok", got["a"])
				}
				for _, k := range bAttempts {
					if got[k] != "EACCES" {
						t.Errorf("restricted: %s: got %q, want EACCES", k, got[k])
					}
				}
				for _, k := range abstractAttempts {
					if got[k] != "EPERM" {
						t.Errorf("restricted: %s: got %q, want EPERM", k, got[k])
					}
				}
				if n := arrivedB.Load(); n != 0 {
					t.Errorf("restricted: %d connections reached port B", n)
				}
				if b == "own" && got["own_arrivals_b"] != "0" {
					t.Errorf("restricted: %s connections reached the program's own port B", got["own_arrivals_b"])
				}
				if n, d := conns.Load(), dgrams.Load(); n+d != 0 {
					t.Errorf("restricted: %d connections and %d datagrams reached the abstract sockets", n, d)
				}

				ctl := run("control")
				time.Sleep(200 * time.Millisecond)
				for _, k := range bAttempts {
					if ctl[k] != "ok" {
						t.Errorf("control: %s: got %q, want ok", k, ctl[k])
					}
				}
				if b == "own" {
					if ctl["own_arrivals_b"] == "0" || ctl["own_arrivals_b"] == "" {
						t.Errorf("control: nothing reached the program's own port B: %q", ctl["own_arrivals_b"])
					}
					return // the default policy denies outside abstract sockets
				}
				if arrivedB.Load() == 0 {
					t.Error("control: nothing reached port B")
				}
				for _, k := range abstractAttempts {
					if ctl[k] != "ok" {
						t.Errorf("control: %s: got %q, want ok", k, ctl[k])
					}
				}
				if conns.Load() == 0 || dgrams.Load() == 0 {
					t.Errorf("control: %d connections and %d datagrams reached the abstract sockets", conns.Load(), dgrams.Load())
				}
			})
		}
	}
}
