package container

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"sandbox/tests/internal/nettest"
)

func TestMain(m *testing.M) { os.Exit(nettest.Main(m)) }

// sandboxAdd is what the documented profile adds to Docker's default
// (examples/docker/seccomp-sandbox.json; dockerprofile.SandboxAdd).
const sandboxAdd = "pidfd_getfd,kcmp"

// outside is an address that exists nowhere in the test's empty network
// namespace: a connect that reaches the kernel gets ENETUNREACH.
const outside = "10.9.0.5:80"

type tools struct {
	sandbox, launcher string
}

func setup(t *testing.T) tools {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root, to create PID and network namespaces (unshare) and to drop capabilities as a container does")
	}
	for _, tool := range []string{"unshare", "ip", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipping: %s is not installed", tool)
		}
	}
	t.Parallel()
	return tools{
		sandbox:  nettest.BuildSandbox(t),
		launcher: nettest.GoBuild(t, "./tests/container/dockerprofile"),
	}
}

func cc(t *testing.T, name string) string {
	return nettest.CompileC(t, filepath.Join("testdata", name), false)
}

// container describes one run.
type container struct {
	add       string   // dockerprofile -add: syscalls added to Docker's profile
	launchArg []string // more dockerprofile flags
	env       []string // added to the environment
	flags     []string // sandbox run flags
	program   []string
}

func (tl tools) argv(c container) []string {
	argv := []string{"unshare", "--pid", "--fork", "--mount-proc", "--net", "--kill-child", "--",
		"sh", "-c", `ip link set lo up && exec "$@"`, "sh",
		tl.launcher, "-add=" + c.add}
	argv = append(argv, c.launchArg...)
	argv = append(argv, "--", tl.sandbox, "run")
	argv = append(argv, c.flags...)
	argv = append(argv, "--")
	return append(argv, c.program...)
}

// proc is a running container.
type proc struct {
	cmd    *exec.Cmd
	stdout *lines
	stderr *lines
	done   chan struct{}
	err    error
}

// start starts c; it is killed, with everything in its namespaces, when the
// test ends.
func (tl tools) start(t *testing.T, c container) *proc {
	t.Helper()
	argv := tl.argv(c)
	cmd := exec.Command(argv[0], argv[1:]...)
	// Only the test's own SANDBOX_* variables reach the sandbox.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SANDBOX_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, c.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &proc{cmd: cmd, stdout: newLines(), stderr: newLines(), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		// The sandbox shares unshare's process group; it is PID 1 of the
		// namespace, whose other processes die with it.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	})
	return p
}

// wait waits for the container to end and returns its exit status (128+N
// for signal N).
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("still running after %v\nstdout:\n%s\nstderr:\n%s", timeout, p.stdout, p.stderr)
	}
	var exit *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &exit):
		ws := exit.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ws.ExitStatus()
	}
	t.Fatal(p.err)
	return -1
}

// waitLine waits until the program prints line on stdout.
func (p *proc) waitLine(t *testing.T, line string) {
	t.Helper()
	select {
	case <-p.stdout.seen(line):
	case <-p.done:
		t.Fatalf("ended before printing %q\nstdout:\n%s\nstderr:\n%s", line, p.stdout, p.stderr)
	case <-time.After(10 * time.Second):
		t.Fatalf("no %q after 10s\nstdout:\n%s\nstderr:\n%s", line, p.stdout, p.stderr)
	}
}

// pid1 returns the host pid of the namespace's PID 1, unshare's child,
// and checks that it is the sandbox.
func (p *proc) pid1(t *testing.T, sandbox string) int {
	t.Helper()
	parent := p.cmd.Process.Pid
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || ppidOf(pid) != parent {
			continue
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil || exe != sandbox {
			t.Fatalf("unshare's child %d runs %q (%v), not the sandbox %s", pid, exe, err, sandbox)
		}
		return pid
	}
	t.Fatalf("unshare (%d) has no child", parent)
	return -1
}

func ppidOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 2 {
		return -1
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// run runs c to completion (at most 30s).
func (tl tools) run(t *testing.T, c container) (stdout, stderr string, code int) {
	t.Helper()
	p := tl.start(t, c)
	code = p.wait(t, 30*time.Second)
	return p.stdout.String(), p.stderr.String(), code
}

// lines collects output and tells when a given line was written.
type lines struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	waiters map[string]chan struct{}
}

func newLines() *lines { return &lines{waiters: map[string]chan struct{}{}} }

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	l.notify()
	return len(p), nil
}

func (l *lines) notify() {
	for line, ch := range l.waiters {
		if bytes.Contains([]byte("\n"+l.buf.String()), []byte("\n"+line+"\n")) {
			close(ch)
			delete(l.waiters, line)
		}
	}
}

func (l *lines) seen(line string) <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	ch := make(chan struct{})
	l.waiters[line] = ch
	l.notify()
	return ch
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// The environment is what it claims: the sandbox is PID 1, its program
// runs without capabilities, with no_new_privs, under seccomp filters, and
// the network namespace holds only lo.
func TestEnvironment(t *testing.T) {
	tl := setup(t)
	p := tl.start(t, container{add: sandboxAdd, program: []string{"sh", "-c",
		`echo ppid=$PPID; grep -E '^(CapEff|CapPrm|CapBnd|CapAmb|NoNewPrivs|Seccomp|Seccomp_filters):' /proc/self/status; ` +
			`tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; echo ready; exec sleep 100`}})
	p.waitLine(t, "ready")
	pid1 := p.pid1(t, tl.sandbox)
	// The sandbox itself runs as the launcher left it.
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid1))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CapEff:\t0000000000000000", "CapBnd:\t0000000000000000", "NoNewPrivs:\t1", "Seccomp:\t2", "NSpid:\t" + strconv.Itoa(pid1) + "\t1\n"} {
		if !strings.Contains(string(st), want) {
			t.Errorf("the sandbox (host pid %d): no %q in its status:\n%s", pid1, want, st)
		}
	}
	syscall.Kill(pid1, syscall.SIGTERM)
	if code := p.wait(t, 10*time.Second); code != 143 {
		t.Errorf("exit %d after SIGTERM, want 143", code)
	}
	out := p.stdout.String()
	for _, want := range []string{"ppid=1\n", "CapEff:\t0000000000000000\n", "CapPrm:\t0000000000000000\n",
		"CapBnd:\t0000000000000000\n", "CapAmb:\t0000000000000000\n", "NoNewPrivs:\t1\n", "Seccomp:\t2\n", "\nlo\nready\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("program: no %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Seccomp_filters:\t1\n") {
		t.Errorf("program: one seccomp filter only, want Docker's and the sandbox's:\n%s", out)
	}
}

// A daemon that double-forks leaves no zombie: PID 1 reaps the orphan. The
// daemon left running is killed when PROGRAM exits, or awaited with
// --wait-all; either way PROGRAM's status is the container's.
func TestDoubleForkNoZombie(t *testing.T) {
	tl := setup(t)
	prog := cc(t, "daemon.c")
	const daemonMS = 400
	for _, waitAll := range []bool{false, true} {
		t.Run(fmt.Sprintf("wait-all=%v", waitAll), func(t *testing.T) {
			dir := t.TempDir()
			var flags []string
			if waitAll {
				flags = []string{"--wait-all"}
			}
			start := time.Now()
			stdout, stderr, code := tl.run(t, container{add: sandboxAdd, flags: flags,
				program: []string{prog, dir, strconv.Itoa(daemonMS)}})
			elapsed := time.Since(start)
			if code != 3 || stdout != "orphan reaped\ndaemon ppid 1\nzombies 0\n" {
				t.Fatalf("exit %d, want 3; stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			_, err := os.Stat(filepath.Join(dir, "daemon-done"))
			if waitAll {
				if err != nil {
					t.Errorf("--wait-all returned after %v without waiting for the daemon: %v", elapsed, err)
				}
				return
			}
			// Give a surviving daemon time to show itself.
			time.Sleep(daemonMS*time.Millisecond + 300*time.Millisecond - time.Since(start))
			if _, err := os.Stat(filepath.Join(dir, "daemon-done")); err == nil {
				t.Errorf("the daemon outlived PROGRAM (run took %v)", elapsed)
			}
		})
	}
}

// SIGTERM sent to PID 1 (docker stop) reaches the program, whose death by
// SIGTERM is the container's status: 143.
func TestSigtermReachesProgram(t *testing.T) {
	tl := setup(t)
	prog := cc(t, "signals.c")
	p := tl.start(t, container{add: sandboxAdd, program: []string{prog, "term"}})
	p.waitLine(t, "ready")
	if err := syscall.Kill(p.pid1(t, tl.sandbox), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 10*time.Second); code != 143 {
		t.Errorf("exit %d, want 143\nstderr:\n%s", code, p.stderr)
	}
	if out := p.stdout.String(); out != "ready\ngot SIGTERM\n" {
		t.Errorf("stdout %q, want the program to report SIGTERM", out)
	}
}

// A program that ignores SIGTERM is killed when the grace period ends:
// status 137.
func TestGraceEndsInSigkill(t *testing.T) {
	tl := setup(t)
	prog := cc(t, "signals.c")
	p := tl.start(t, container{add: sandboxAdd, flags: []string{"--grace", "300ms"}, program: []string{prog, "ignore"}})
	p.waitLine(t, "ready")
	pid1 := p.pid1(t, tl.sandbox)
	start := time.Now()
	syscall.Kill(pid1, syscall.SIGTERM)
	code := p.wait(t, 10*time.Second)
	elapsed := time.Since(start)
	if code != 137 {
		t.Errorf("exit %d, want 137\nstderr:\n%s", code, p.stderr)
	}
	if elapsed < 300*time.Millisecond {
		t.Errorf("killed after %v, before the 300ms grace period", elapsed)
	}
}

// A shell waiting for background jobs stops at once on SIGTERM; its jobs
// are killed with it.
func TestSigtermShellWithJobs(t *testing.T) {
	tl := setup(t)
	p := tl.start(t, container{add: sandboxAdd, program: []string{"sh", "-c", "sleep 100 & sleep 100 & echo ready; wait"}})
	p.waitLine(t, "ready")
	pid1 := p.pid1(t, tl.sandbox)
	start := time.Now()
	syscall.Kill(pid1, syscall.SIGTERM)
	if code := p.wait(t, 5*time.Second); code != 143 {
		t.Errorf("exit %d, want 143\nstderr:\n%s", code, p.stderr)
	}
	t.Logf("stopped %v after SIGTERM", time.Since(start))
}

// Policies apply inside the container as elsewhere: flags, environment
// variables, SANDBOX_POLICY and SANDBOX_POLICY_YAML.
func TestPolicies(t *testing.T) {
	tl := setup(t)
	prog := cc(t, "connect.c")
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policyFile, []byte("version: 1\ndefault: self\nrules:\n  - deny: tcp:"+outside+"\n    errno: EPERM\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		flags []string
		env   []string
		want  string // the verdict on outside
	}{
		// The default policy, "self": the program's own listener only.
		{"default", nil, nil, "EACCES"},
		{"refuse-flag", []string{"--refuse", "tcp:" + outside}, nil, "ECONNREFUSED"},
		{"refuse-env", nil, []string{"SANDBOX_REFUSE=tcp:" + outside}, "ECONNREFUSED"},
		{"policy-yaml-env", nil, []string{"SANDBOX_POLICY_YAML=version: 1\ndefault: self\nrules:\n  - unreachable: tcp:" + outside + "\n    reason: host\n"}, "EHOSTUNREACH"},
		{"policy-file-env", nil, []string{"SANDBOX_POLICY=" + policyFile}, "EPERM"},
		// Allowed: the kernel answers, from inside the empty namespace.
		{"allow-all", []string{"--allow-all"}, nil, "ENETUNREACH"},
	} {
		t.Run(c.name, func(t *testing.T) {
			stdout, stderr, code := tl.run(t, container{add: sandboxAdd, flags: c.flags, env: c.env,
				program: []string{prog, "self", "thread", outside}})
			want := "self: ok\nthread: ok\n" + outside + ": " + c.want + "\n"
			if code != 0 || stdout != want {
				t.Errorf("exit %d, stdout:\n%s\nwant:\n%s\nstderr:\n%s", code, stdout, want, stderr)
			}
		})
	}
}

// SANDBOX_LOG_FORMAT=json: the logs on stderr are one JSON object per
// line, one per connect.
//
// The program lingers 200ms after its last connect: the sandbox may drop the
// log record of a connect made just before PROGRAM exits (the record is
// queued after the answer, and the queue is closed when PROGRAM is reaped).
func TestJSONLogs(t *testing.T) {
	tl := setup(t)
	prog := cc(t, "connect.c")
	stdout, stderr, code := tl.run(t, container{add: sandboxAdd, env: []string{"SANDBOX_LOG_FORMAT=json"},
		program: []string{"sh", "-c", `"$0" "$@" && sleep 0.2`, prog, "self", outside}})
	if code != 0 || stdout != "self: ok\n"+outside+": EACCES\n" {
		t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	verdicts := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(stderr, "\n"), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not a JSON object: %q: %v", line, err)
		}
		if rec["syscall"] == "connect" {
			dst, _ := rec["dst"].(string)
			verdict, _ := rec["verdict"].(string)
			verdicts[dst] = verdict
			for _, k := range []string{"pid", "fd", "family", "type", "errno", "latency"} {
				if _, ok := rec[k]; !ok {
					t.Errorf("no %q in %s", k, line)
				}
			}
		}
	}
	if verdicts["tcp:"+outside] != "deny" || len(verdicts) != 2 {
		t.Errorf("connect records %v, want the self connect allowed and tcp:%s denied\nstderr:\n%s", verdicts, outside, stderr)
	}
}

// Under Docker's stock profile, pidfd_getfd is refused (CAP_SYS_PTRACE
// only): the supervisor could take neither the listener nor any socket, so
// it refuses to start (125), says why, and the program never runs. With
// pidfd_getfd alone, on a kernel without PIDFD_THREAD (< 6.9, simulated),
// connects from threads other than the main one fail closed with EPERM,
// unless kcmp is allowed.
func TestStockProfileFailsClosed(t *testing.T) {
	tl := setup(t)
	prog := cc(t, "connect.c")
	for _, c := range []struct {
		name   string
		add    string
		launch []string
		flags  []string
		code   int
		want   string
	}{
		{"stock", "", nil, nil, 125, ""},
		{"stock-allow-all", "", nil, []string{"--allow-all"}, 125, ""},
		{"pidfd_getfd", "pidfd_getfd", nil, nil, 0, "self: ok\nthread: ok\n"},
		{"pidfd_getfd-before-6.9", "pidfd_getfd", []string{"-no-pidfd-thread"}, nil, 0, "self: ok\nthread: EPERM\n"},
		{"pidfd_getfd,kcmp-before-6.9", "pidfd_getfd,kcmp", []string{"-no-pidfd-thread"}, nil, 0, "self: ok\nthread: ok\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			stdout, stderr, code := tl.run(t, container{add: c.add, launchArg: c.launch, flags: c.flags,
				program: []string{prog, "self", "thread"}})
			if code != c.code || stdout != c.want {
				t.Fatalf("exit %d (want %d), stdout:\n%s\nwant:\n%s\nstderr:\n%s", code, c.code, stdout, c.want, stderr)
			}
			if c.code == 125 && !strings.Contains(stderr, "pidfd_getfd: operation not permitted") ||
				c.code == 125 && !strings.Contains(stderr, "seccomp-sandbox.json") {
				t.Errorf("the sandbox did not say why it refused to start, or how to fix it:\n%s", stderr)
			}
			if strings.Contains(c.want, "EPERM") && !strings.Contains(stderr, "pidfd_getfd failed") {
				t.Errorf("the sandbox did not log why it failed closed:\n%s", stderr)
			}
		})
	}
}

// ptraceRule is what dockerd adds to the profile for --cap-add SYS_PTRACE.
const ptraceRule = "kcmp,pidfd_getfd,process_madvise,process_vm_readv,process_vm_writev,ptrace"

// With Docker's default capabilities, a program that switches to another
// user (gosu, su-exec, its own setuid) is beyond the supervisor's reach
// without CAP_SYS_PTRACE: pidfd_getfd needs ptrace rights over it, and its
// connects fail closed. --cap-add SYS_PTRACE makes them work.
func TestProgramSwitchingUser(t *testing.T) {
	tl := setup(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("skipping: setpriv (util-linux) is not installed")
	}
	// A copy of the probe that user nobody can run.
	dir, err := os.MkdirTemp("", "sbxt-container-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	prog := filepath.Join(dir, "connect")
	data, err := os.ReadFile(cc(t, "connect.c"))
	if err == nil {
		err = os.WriteFile(prog, data, 0o755)
	}
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	asNobody := []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"}
	for _, c := range []struct {
		name, caps, add string
		program         []string
		want            string
	}{
		{"same-user", "docker", sandboxAdd, nil, "self: ok\nthread: ok\n"},
		{"other-user", "docker", sandboxAdd, asNobody, "self: EPERM\nthread: EPERM\n"},
		{"other-user-cap-add-sys-ptrace", "docker,sys_ptrace", ptraceRule, asNobody, "self: ok\nthread: ok\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			program := append(append([]string(nil), c.program...), prog, "self", "thread")
			stdout, stderr, code := tl.run(t, container{add: c.add, launchArg: []string{"-caps", c.caps}, program: program})
			if code != 0 || stdout != c.want {
				t.Errorf("exit %d, stdout:\n%s\nwant:\n%s\nstderr:\n%s", code, stdout, c.want, stderr)
			}
		})
	}
}
