package security

import (
	"bufio"
	"encoding/json"
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

// outsideUserns starts a process in a new user namespace outside the
// sandbox (as the given user) and returns that namespace as a file.
func outsideUserns(t *testing.T, prefix []string) *os.File {
	t.Helper()
	argv := append(append([]string{}, prefix...), "unshare", "-U", "sleep", "600")
	cmd := exec.Command(argv[0], argv[1:]...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	self, _ := os.Readlink("/proc/self/ns/user")
	for i := 0; i < 500; i++ {
		// setpriv execs unshare in the same process: the pid stays.
		p := fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid)
		if l, err := os.Readlink(p); err == nil && l != self {
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			return f
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no outside user namespace")
	return nil
}

// New user namespaces give every capability inside them: unshare, clone
// and setns with CLONE_NEWUSER get EPERM, clone3 ENOSYS (threads still
// start: glibc falls back to clone), `unshare -U` fails; --allow-userns
// allows all of them. Joining another same-uid process's namespace, found
// outside the sandbox and passed in, is refused the same way.
func TestNoNewUserNamespaces(t *testing.T) {
	nettest.RequireRoot(t)
	sb := nettest.BuildSandbox(t)
	prog := nettest.CompileC(t, filepath.Join("testdata", "userns.c"), false, "-lpthread")
	denied := "unshare_user: EPERM\nunshare_user_mount: EPERM\nclone_user: EPERM\nclone3_user: ENOSYS\nclone3_plain: ENOSYS\n" +
		"setns_user: EPERM\nsetns_any: EPERM\npthread_create: ok\n"
	allowed := "unshare_user: ok\nunshare_user_mount: ok\nclone_user: ok\nclone3_user: ok\nclone3_plain: ok\n" +
		"setns_user: ok\nsetns_any: ok\npthread_create: ok\n"
	for _, user := range []string{"root", "nobody"} {
		t.Run(user, func(t *testing.T) {
			var prefix []string
			if user == "nobody" {
				prefix = asNobody(sb, prog)
			}
			ns := outsideUserns(t, prefix)
			run := func(flags ...string) []string {
				return append(append(append(append([]string{}, prefix...), sb, "run", "--log-level", "error", "--preserve-fds", "1"), flags...), "--")
			}
			for _, c := range []struct {
				flags []string
				want  string
			}{
				{nil, denied},
				{[]string{"--allow-all", "--keep-caps"}, denied},
				{[]string{"--allow-userns"}, allowed}, // control
			} {
				out, err := runWithFiles(t, []*os.File{ns}, append(run(c.flags...), prog)...)
				if err != nil || out != c.want {
					t.Errorf("%v: %q, want %q (%v)", c.flags, out, c.want, err)
				}
			}
			native, err := runWithFiles(t, []*os.File{ns}, append(append([]string{}, prefix...), prog)...)
			if err != nil || native != allowed {
				t.Errorf("natively: %q, want %q (%v)", native, allowed, err)
			}
			if r := nettest.Run(time.Minute, append(run(), "unshare", "-U", "true")...); r.ExitCode == 0 || !strings.Contains(r.Stderr, "Operation not permitted") {
				t.Errorf("unshare -U under the sandbox: %v, want EPERM", r)
			}
			if r := nettest.Run(time.Minute, append(run("--allow-userns"), "unshare", "-U", "true")...); r.ExitCode != 0 {
				t.Errorf("unshare -U with --allow-userns: %v, want exit 0", r)
			}
		})
	}
}

// wireCounter runs testdata/wirecount.c in the peer namespace and counts
// what it saw, by kind ("packet", "raw", "tcp").
func wireCounter(t *testing.T, n *nettest.Netns) func(kind string) int64 {
	t.Helper()
	bin := nettest.CompileC(t, filepath.Join("testdata", "wirecount.c"), false)
	cmd := exec.Command("ip", "netns", "exec", n.Peer, bin)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	counts := map[string]*atomic.Int64{"packet": {}, "raw": {}, "tcp": {}}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "ready" {
				close(ready)
			} else if c := counts[sc.Text()]; c != nil {
				c.Add(1)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("wirecount not ready")
	}
	return func(kind string) int64 { return counts[kind].Load() }
}

// Class 9: a root program keeps no capability that reaches the wire or
// changes the network: no AF_XDP, packet or raw sockets (nor AF_INET
// SOCK_PACKET, a packet socket in disguise), no address, route or nftables
// change (an nft DNAT would turn an allowed destination into a forbidden
// one). Counted in the peer namespace; the control, --keep-caps
// --raw-sockets, arrives. --keep-caps alone keeps the network
// configuration changes but the filter still refuses raw sockets.
func TestRootProgramLosesNetworkCapabilities(t *testing.T) {
	n := nettest.NewNetns(t)
	sb := nettest.BuildSandbox(t)
	prog := nettest.CompileC(t, filepath.Join("testdata", "rootnet.c"), false)
	count := wireCounter(t, n)
	dir := t.TempDir()
	ruleset := filepath.Join(dir, "dnat.nft")
	os.WriteFile(ruleset, []byte("table ip sbxdnat {\n chain out {\n  type nat hook output priority -100;\n"+
		"  ip daddr 10.231.0.9 tcp dport 7777 dnat to 10.231.0.2\n }\n}\n"), 0o644)
	const dial = `import socket
s = socket.socket(); s.settimeout(2)
try: s.connect(("10.231.0.9", 7777)); print("dnat: ok")
except OSError as e: print("dnat:", e.errno)`
	sandbox := func(flags ...string) []string {
		return append(append([]string{sb, "run", "--log-level", "error"}, flags...), "--")
	}
	// changes reports which configuration changes took effect in the
	// program's namespace, and undoes them.
	changes := func() []string {
		var got []string
		if r := n.Run(time.Minute, "ip", "addr", "show", "dev", "veth0"); strings.Contains(r.Stdout, "10.231.0.77") {
			got = append(got, "addr")
			n.Run(time.Minute, "ip", "addr", "del", "10.231.0.77/32", "dev", "veth0")
		}
		if r := n.Run(time.Minute, "ip", "route", "show"); strings.Contains(r.Stdout, "198.51.100.0/24") {
			got = append(got, "route")
			n.Run(time.Minute, "ip", "route", "del", "198.51.100.0/24")
		}
		if r := n.Run(time.Minute, "nft", "list", "tables"); strings.Contains(r.Stdout, "sbxdnat") {
			got = append(got, "nft")
			n.Run(time.Minute, "nft", "delete", "table", "ip", "sbxdnat")
		}
		return got
	}
	type figures struct{ packet, raw, tcp int64 }
	attempt := func(flags ...string) (figures, []string, string) {
		before := figures{count("packet"), count("raw"), count("tcp")}
		var out strings.Builder
		for _, m := range []string{"packet", "sockpkt", "raw", "xdp"} {
			r := n.Run(time.Minute, append(sandbox(flags...), prog, m)...)
			out.WriteString(r.Stdout)
		}
		script := "ip addr add 10.231.0.77/32 dev veth0; ip route add 198.51.100.0/24 via 10.231.0.2; nft -f " + ruleset + "; exec python3 -c '" + dial + "'"
		r := n.Run(time.Minute, append(sandbox(append([]string{"--allow", "tcp:10.231.0.9:7777"}, flags...)...), "sh", "-c", script)...)
		out.WriteString(r.Stdout)
		time.Sleep(200 * time.Millisecond)
		after := figures{count("packet") - before.packet, count("raw") - before.raw, count("tcp") - before.tcp}
		return after, changes(), out.String()
	}
	for _, flags := range [][]string{nil, {"--allow-all"}} {
		got, changed, out := attempt(flags...)
		t.Logf("%v: arrived %+v, changes %v", flags, got, changed)
		if got != (figures{}) || len(changed) != 0 {
			t.Errorf("%v: arrived %+v, changes %v; want none\n%s", flags, got, changed, out)
		}
		for _, want := range []string{"packet: EPERM", "sockpkt: EPERM", "raw: EPERM", "xdp: EPERM", "dnat: "} {
			if !strings.Contains(out, want) || strings.Contains(out, "dnat: ok") {
				t.Errorf("%v: want %q:\n%s", flags, want, out)
			}
		}
	}
	// --raw-sockets keeps CAP_NET_RAW, not CAP_NET_ADMIN.
	got, changed, out := attempt("--raw-sockets", "--allow-all")
	t.Logf("[--raw-sockets --allow-all]: arrived %+v, changes %v", got, changed)
	if got.tcp != 0 || len(changed) != 0 || !strings.Contains(out, "packet: ok") {
		t.Errorf("--raw-sockets: arrived %+v, changes %v; want raw sockets only\n%s", got, changed, out)
	}
	// Capabilities kept: the filter's raw rows still refuse the sockets.
	got, changed, out = attempt("--keep-caps", "--allow-all")
	t.Logf("[--keep-caps --allow-all]: arrived %+v, changes %v", got, changed)
	if got.packet != 0 || got.raw != 0 || !strings.Contains(out, "xdp: EPERM") || !strings.Contains(out, "sockpkt: EPERM") {
		t.Errorf("--keep-caps: raw sockets got through: %+v\n%s", got, out)
	}
	// Control: everything arrives.
	got, changed, out = attempt("--keep-caps", "--raw-sockets", "--allow-all")
	t.Logf("control [--keep-caps --raw-sockets --allow-all]: arrived %+v, changes %v", got, changed)
	if got != (figures{1, 1, 1}) || len(changed) != 3 {
		t.Errorf("control: arrived %+v, changes %v; want 1 each and addr, route, nft\n%s", got, changed, out)
	}
	for _, want := range []string{"packet: ok", "sockpkt: ok", "raw: ok", "xdp: ok", "dnat: ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("control: want %q:\n%s", want, out)
		}
	}
}

// Each layer fails closed: a setup failure ends the sandbox with 125, one
// line naming the cause and the flag that turns the layer off, and PROGRAM
// never runs.
func TestLayerSetupFailuresFailClosed(t *testing.T) {
	sb := nettest.BuildSandbox(t)
	for step, fix := range map[string]string{
		"fds": "--preserve-fds", "capabilities": "--keep-caps", "userns": "--allow-userns", "landlock": "--landlock=false",
	} {
		t.Run(step, func(t *testing.T) {
			code, ran, stderr := nettest.FailAt(t, sb, step)
			if code != 125 {
				t.Errorf("exit %d, want 125", code)
			}
			if ran {
				t.Error("PROGRAM ran although setup failed")
			}
			if msg := stderr; !strings.Contains(msg, "injected") || !strings.Contains(msg, fix) || strings.Count(msg, "\n") != 1 {
				t.Errorf("stderr %q: want one line naming the cause and %s", msg, fix)
			}
		})
	}
}

// Each layer says what it did, in one (debug) line of the supervisor's log.
func TestLayersAreLogged(t *testing.T) {
	sb := nettest.BuildSandbox(t)
	layers := func(flags ...string) map[string]map[string]any {
		argv := append(append([]string{sb, "run", "--log-level", "debug", "--log-format", "json"}, flags...), "--", "true")
		r := nettest.Run(time.Minute, argv...)
		got := map[string]map[string]any{}
		for _, l := range strings.Split(strings.TrimSpace(r.Stderr), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(l), &rec) == nil && rec["layer"] != nil {
				if rec["level"] != "debug" {
					t.Errorf("%s: level %v, want debug", l, rec["level"])
				}
				got[rec["layer"].(string)] = rec
			}
		}
		return got
	}
	for _, c := range []struct {
		flags []string
		want  map[string][2]string // layer: a field and its value ("" for any)
	}{
		{nil, map[string][2]string{"fds": {"preserved", "0"}, "capabilities": {"dropped", ""},
			"userns": {"clone3", "ENOSYS"}, "landlock": {"scoped", "signal"}}},
		{[]string{"--landlock=false", "--keep-caps", "--allow-userns", "--preserve-fds", "2"},
			map[string][2]string{"fds": {"preserved", "2"}, "capabilities": {"kept", "all"},
				"userns": {"allowed", "true"}, "landlock": {"disabled", "true"}}},
	} {
		got := layers(c.flags...)
		for layer, kv := range c.want {
			v, ok := got[layer][kv[0]]
			if !ok || kv[1] != "" && v != kv[1] {
				t.Errorf("%v: layer=%s %s=%v, want %q (record %v)", c.flags, layer, kv[0], v, kv[1], got[layer])
			}
		}
	}
}

// Raw, packet and XDP sockets are refused by the kernel itself once
// CAP_NET_RAW is gone, so the errno and its order are Linux's: as nobody,
// the sandbox gives exactly what Linux gives; as root, SOCK_RAW with
// protocol 0 still gets EPROTONOSUPPORT (checked before the capability) and
// the rest EPERM, a root without CAP_NET_RAW's answers.
func TestRawSocketErrnosAreLinux(t *testing.T) {
	nettest.RequireRoot(t)
	sb := nettest.BuildSandbox(t)
	prog := nettest.CompileC(t, filepath.Join("testdata", "rawerrno.c"), false)
	nobody := asNobody(sb, prog)
	native := nettest.Run(time.Minute, append(nobody, prog)...)
	boxed := nettest.Run(time.Minute, append(nobody, sb, "run", "--log-level", "error", "--", prog)...)
	if native.ExitCode != 0 || boxed.Stdout != native.Stdout {
		t.Errorf("as nobody, sandboxed:\n%s\nnatively:\n%s", boxed.Stdout, native.Stdout)
	}
	root := nettest.Run(time.Minute, sb, "run", "--log-level", "error", "--", prog)
	want := native.Stdout // a root without CAP_NET_RAW answers as nobody does
	if root.Stdout != want {
		t.Errorf("as root, sandboxed:\n%s\nwant (a root without CAP_NET_RAW):\n%s", root.Stdout, want)
	}
	rootNative := nettest.Run(time.Minute, prog)
	if !strings.Contains(rootNative.Stdout, "inet_raw_0: EPROTONOSUPPORT") || !strings.Contains(root.Stdout, "inet_raw_0: EPROTONOSUPPORT") {
		t.Errorf("SOCK_RAW protocol 0: natively as root\n%s\nsandboxed\n%s", rootNative.Stdout, root.Stdout)
	}
}

// dockerCaps is setpriv's spelling of the capabilities a sandboxed root
// program keeps: natively, a root started with this bounding set has
// exactly them, the oracle for the sandbox's answers.
const dockerCaps = "-all,+chown,+dac_override,+fsetid,+fowner,+mknod,+setgid,+setuid,+setfcap,+setpcap,+net_bind_service,+sys_chroot,+kill,+audit_write"

// The supervisor sends a Unix socket's SCM_CREDENTIALS itself, with its own
// pid and capabilities: a program must not borrow them to claim another
// pid (root without CAP_SYS_ADMIN, the capability layer's default) or
// another uid or gid (a program that switched to nobody under a root
// supervisor). Every claim gets what Linux gives the program itself.
func TestCredentialsAreNotBorrowed(t *testing.T) {
	nettest.RequireRoot(t)
	sb := nettest.BuildSandbox(t)
	prog := nettest.CompileC(t, filepath.Join("testdata", "credclaim.c"), false)
	setpriv := asNobody(sb, prog)
	for _, c := range []struct {
		name          string
		native, boxed []string
	}{
		{"root without CAP_SYS_ADMIN",
			[]string{"setpriv", "--bounding-set", dockerCaps, "--", prog},
			[]string{sb, "run", "--log-level", "error", "--", prog}},
		{"switched to nobody",
			append(append([]string{}, setpriv...), prog),
			append(append([]string{sb, "run", "--log-level", "error", "--keep-caps", "--"}, setpriv...), prog)},
	} {
		native := nettest.Run(time.Minute, c.native...)
		boxed := nettest.Run(time.Minute, c.boxed...)
		if native.ExitCode != 0 || boxed.Stdout != native.Stdout {
			t.Errorf("%s: sandboxed\n%s\nnatively\n%s\n%v", c.name, boxed.Stdout, native.Stdout, boxed)
		}
		if !strings.Contains(native.Stdout, "EPERM") {
			t.Errorf("%s: the native oracle refuses nothing:\n%s", c.name, native.Stdout)
		}
	}
}
