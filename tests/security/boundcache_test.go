package security

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"sandbox/tests/internal/nettest"
)

// The supervisor remembers, per socket file, the name its socket was bound
// under (the policy judges that name too: a hard link or a rename of a
// foreign socket into an allowed directory must not reach it). These
// attacks fill that memory with an allowed socket's file, then put a
// forbidden socket behind the same path (a hard link, a rename, or the
// allowed socket closed and its file replaced by a new socket's), and
// connect again. Under --allow unix:DIR/allowed/* nothing may arrive at the
// forbidden socket; the control run, which allows the forbidden directory
// too, must arrive there, or the attack proves nothing.

// unixListener listens on path in namespace ns (the supervisor's: the
// bound-name lookup sees that namespace's sockets), readable for nobody,
// and counts what arrives.
func unixListener(t *testing.T, ns, path string) (net.Listener, *atomic.Int64) {
	t.Helper()
	var l net.Listener
	inNetns(t, ns, 0, func() (err error) {
		l, err = net.Listen("unix", path)
		return err
	})
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	os.Chmod(path, 0o777)
	return l, countAccepts(t, l)
}

func TestUnixBoundNameCache(t *testing.T) {
	sb := nettest.BuildSandbox(t)
	prog := nettest.CompileC(t, filepath.Join("testdata", "boundcache.c"), false)
	n := nettest.NewNetns(t)
	const rounds = 20
	for _, variant := range []string{"link", "rename", "reuse"} {
		for _, user := range []string{"root", "nobody", "nobody-program"} {
			for _, pol := range []string{"rule", "control"} {
				name := variant + "/" + user + "/" + pol
				dir := selfDir(t)
				allowedDir, forbiddenDir := filepath.Join(dir, "allowed"), filepath.Join(dir, "forbidden")
				os.Mkdir(allowedDir, 0o777)
				os.Chmod(allowedDir, 0o777) // past the umask
				os.Mkdir(forbiddenDir, 0o755)
				path := filepath.Join(allowedDir, "a.sock")
				allowedL, allowed := unixListener(t, n.Name, path)
				fpath := filepath.Join(forbiddenDir, "f.sock")
				var forbidden *atomic.Int64
				if variant != "reuse" {
					_, forbidden = unixListener(t, n.Name, fpath)
				}
				fifo := filepath.Join(dir, "go")
				if err := syscall.Mkfifo(fifo, 0o666); err != nil {
					t.Fatal(err)
				}
				os.Chmod(fifo, 0o666)
				var prefix, progPrefix []string
				switch user {
				case "nobody":
					prefix = asNobody(sb, prog)
				case "nobody-program":
					progPrefix = asNobody(prog)
				}
				argv := append(prefix, sb, "run", "--log-level", "error", "--allow", "unix:"+allowedDir+"/*")
				if pol == "control" {
					argv = append(argv, "--allow", "unix:"+forbiddenDir+"/*")
				}
				argv = append(append(append(argv, "--"), progPrefix...), prog, path, strconv.Itoa(rounds), fifo)
				done := make(chan nettest.Result, 1)
				go func() { done <- n.Run(2*time.Minute, argv...) }()
				// The first round has filled the supervisor's memory once
				// every connect arrived.
				var r nettest.Result
				exited := false
				for deadline := time.Now().Add(time.Minute); allowed.Load() < rounds; {
					select {
					case r = <-done:
						exited = true
					case <-time.After(10 * time.Millisecond):
					}
					if exited || time.Now().After(deadline) {
						t.Fatalf("%s: the first round did not arrive (%d): %v %s", name, allowed.Load(), r, r.Stdout)
					}
				}
				switch variant {
				case "link":
					os.Remove(path)
					if err := os.Link(fpath, path); err != nil {
						t.Fatal(err)
					}
				case "rename":
					if err := os.Rename(fpath, path); err != nil {
						t.Fatal(err)
					}
				case "reuse":
					// The allowed socket goes; a new forbidden socket's file
					// (which a file system may give the freed inode number)
					// takes the path.
					allowedL.Close()
					os.Remove(path)
					_, forbidden = unixListener(t, n.Name, fpath)
					if err := os.Link(fpath, path); err != nil {
						t.Fatal(err)
					}
				}
				w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				w.Write([]byte{1})
				w.Close()
				r = <-done
				if r.ExitCode != 0 {
					t.Fatalf("%s: %v", name, r)
				}
				time.Sleep(300 * time.Millisecond) // let the counters drain
				k := forbidden.Load()
				t.Logf("%s: %s; %d arrived at the forbidden socket", name, strings.ReplaceAll(strings.TrimSpace(r.Stdout), "\n", "; "), k)
				if !strings.Contains(r.Stdout, "before ok="+strconv.Itoa(rounds)+" ") {
					t.Errorf("%s: the allowed socket was not reached first: %s", name, r.Stdout)
				}
				if pol == "rule" && (k != 0 || !strings.Contains(r.Stdout, "after ok=0 ")) {
					t.Errorf("%s: %d arrived at the forbidden socket bound in %s (%s)", name, k, forbiddenDir, r.Stdout)
				}
				if pol == "control" && k == 0 {
					t.Errorf("%s, control: nothing arrived at the forbidden socket: the attack is not exercised (%s)", name, r.Stdout)
				}
			}
		}
	}
}
