package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"sandbox/tests/internal/nettest"
)

// The exit status is PROGRAM's own, 128+N for a signal, and docker run's
// 125/126/127 for the sandbox's failures, each with one line naming the cause.
func TestExitStatus(t *testing.T) {
	sb := sandbox(t)
	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string // substring of the one-line cause, "" when none
	}{
		{"true", []string{"run", "--", "true"}, 0, ""},
		{"false", []string{"run", "--", "/bin/false"}, 1, ""},
		{"own code", []string{"run", "--", "sh", "-c", "exit 42"}, 42, ""},
		{"killed by SIGTERM", []string{"run", "--", "sh", "-c", "kill -TERM $$"}, 143, ""},
		{"killed by SIGKILL", []string{"run", "--", "sh", "-c", "kill -KILL $$"}, 137, ""},
		{"not found", []string{"run", "--", "/nonexistent"}, 127, "/nonexistent: no such file or directory"},
		{"not in PATH", []string{"run", "--", "no-such-program-xyz"}, 127, "no-such-program-xyz: executable file not found in $PATH"},
		{"not executable", []string{"run", "--", "/etc/passwd"}, 126, "/etc/passwd: permission denied"},
		{"a directory", []string{"run", "--", "/tmp"}, 126, "/tmp: permission denied"},
		{"no program", []string{"run"}, 125, "no PROGRAM given"},
		{"bad flag", []string{"run", "--no-such-flag", "--", "true"}, 125, "no-such-flag (see 'sandbox run --help')"},
		{"bad flag of a subcommand", []string{"policy", "check", "--nope"}, 125, "-nope (see 'sandbox policy check --help')"},
		{"bad top-level flag", []string{"--nope"}, 125, "-nope (see 'sandbox --help')"},
		{"no such command", []string{"rnu", "--", "true"}, 125, `no command "rnu": the commands are run, learn, matrix and policy`},
		{"bad log level", []string{"run", "--log-level", "loud", "--", "true"}, 125, `--log-level "loud"`},
		{"bad log format", []string{"run", "--log-format", "xml", "--", "true"}, 125, `--log-format "xml"`},
		{"unwritable log file", []string{"run", "--log-file", "/proc/nope/log", "--", "true"}, 125, "--log-file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, sb, c.args...)
			if r.code != c.code {
				t.Fatalf("exit %d, want %d (stderr %q)", r.code, c.code, r.stderr)
			}
			if c.stderr == "" {
				return
			}
			if r.stdout != "" {
				t.Errorf("stdout %q: an error is one line on stderr, not the help", r.stdout)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "sandbox: ") || !strings.Contains(lines[0], c.stderr) {
				t.Fatalf("stderr %q: want one line 'sandbox: ...%s...'", r.stderr, c.stderr)
			}
		})
	}
}

// --version names the build; it is not an error.
func TestVersion(t *testing.T) {
	r := run(t, sandbox(t), "--version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "sandbox version ") || !strings.Contains(r.stdout, "go1.") || r.stderr != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// stdin, stdout, stderr, the environment, the working directory and argv
// pass through untouched.
func TestPassThrough(t *testing.T) {
	sb := sandbox(t)
	dir := t.TempDir()
	cmd := exec.Command(sb, "run", "--log-level", "error", "--", "sh", "-c",
		`read line; echo "in=$line"; echo "env=$SANDBOX_E2E_VAR"; echo "cwd=$(pwd)"; echo "argv=$0 $1 $2"; echo err >&2`,
		"zero", "one two", "three")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SANDBOX_E2E_VAR=x y")
	cmd.Stdin = strings.NewReader("hello\n")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	want := "in=hello\nenv=x y\ncwd=" + dir + "\nargv=zero one two three\n"
	if string(out) != want {
		t.Errorf("stdout %q, want %q", out, want)
	}
	if stderr.String() != "err\n" {
		t.Errorf("stderr %q, want %q", stderr.String(), "err\n")
	}
}

// Signals sent to the sandbox reach PROGRAM.
func TestSignalForwarding(t *testing.T) {
	sb := sandbox(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT,
		syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH} {
		t.Run(sig.String(), func(t *testing.T) {
			ready := filepath.Join(t.TempDir(), "ready")
			name := strings.TrimPrefix(signalName(sig), "SIG")
			cmd := exec.Command(sb, "run", "--", "sh", "-c",
				`trap 'echo got-`+name+`; exit 3' `+name+`; touch `+ready+`; while :; do sleep 0.05; done`)
			var out strings.Builder
			cmd.Stdout = &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitFile(t, ready)
			cmd.Process.Signal(sig)
			err := cmd.Wait()
			if code := cmd.ProcessState.ExitCode(); code != 3 {
				t.Fatalf("exit %d (%v), want 3; stdout %q", code, err, out.String())
			}
			if out.String() != "got-"+name+"\n" {
				t.Errorf("stdout %q", out.String())
			}
		})
	}
}

func signalName(s syscall.Signal) string {
	return map[syscall.Signal]string{syscall.SIGINT: "INT", syscall.SIGTERM: "TERM", syscall.SIGHUP: "HUP",
		syscall.SIGQUIT: "QUIT", syscall.SIGUSR1: "USR1", syscall.SIGUSR2: "USR2", syscall.SIGWINCH: "WINCH"}[s]
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never appeared", path)
}

// If any setup step fails, PROGRAM never runs and the exit status is 125.
func TestSetupFailureNeverRunsProgram(t *testing.T) {
	sb := sandbox(t)
	for _, step := range []string{"start", "nnp", "filter", "listener", "handoff"} {
		t.Run(step, func(t *testing.T) {
			code, ran, stderr := nettest.FailAt(t, sb, step)
			if code != 125 {
				t.Errorf("exit %d, want 125", code)
			}
			if ran {
				t.Error("PROGRAM ran although setup failed")
			}
			if !strings.Contains(stderr, "injected") {
				t.Errorf("stderr does not name the cause: %q", stderr)
			}
		})
	}
}

// The supervisor compiles the filters and the init stage loads their BPF:
// a program the kernel refuses stops the sandbox (125) before PROGRAM runs.
func TestCorruptFilterNeverRunsProgram(t *testing.T) {
	sb := sandbox(t)
	for step, want := range map[string]string{
		"bpf-code": "install seccomp filter: load filter: invalid argument",
	} {
		t.Run(step, func(t *testing.T) {
			code, ran, stderr := nettest.FailAt(t, sb, step)
			if code != 125 {
				t.Errorf("exit %d, want 125", code)
			}
			if ran {
				t.Error("PROGRAM ran although its filter was refused")
			}
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr %q, want %q", stderr, want)
			}
		})
	}
}

// Every connect is logged with the fixed fields; JSON is one object a line.
func TestConnectLogJSON(t *testing.T) {
	sb := sandbox(t)
	logf := filepath.Join(t.TempDir(), "log.json")
	r := run(t, sb, "run", "--allow", "tcp:127.0.0.1:1", "--log-format", "json", "--log-file", logf, "--",
		"python3", "-c", "import socket\ntry: socket.create_connection(('127.0.0.1', 1))\nexcept OSError as e: print(e.errno)")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	data, err := os.ReadFile(logf)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		if m["dst"] != "tcp:127.0.0.1:1" {
			continue
		}
		found = true
		for _, k := range []string{"pid", "fd", "family", "type", "dst", "verdict", "errno", "latency"} {
			if _, ok := m[k]; !ok {
				t.Errorf("log entry lacks %q: %s", k, line)
			}
		}
		if m["errno"] != "ECONNREFUSED" || m["verdict"] != "allow" || m["family"] != "inet" || m["type"] != "stream" {
			t.Errorf("unexpected entry: %s", line)
		}
	}
	if !found {
		t.Fatalf("no log entry for the connect in %q", data)
	}
}

// With a terminal on stdin (docker run -it), PROGRAM gets the terminal's
// foreground process group, so Ctrl-C reaches it directly; the sandbox
// takes the terminal back afterwards.
func TestTerminalForeground(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("skipping: script(1) from util-linux is needed for a pseudo-terminal")
	}
	sb := sandbox(t)
	// script runs the command on a new pseudo-terminal.
	inner := sb + ` run --log-level error -- python3 -c 'import os; print("foreground", os.getpgrp() == os.tcgetpgrp(0))'; ` +
		`python3 -c 'import os; print("reclaimed", os.getpgrp() == os.tcgetpgrp(0))'`
	r := run(t, "script", "-qec", inner, "/dev/null")
	if !strings.Contains(r.stdout, "foreground True") || !strings.Contains(r.stdout, "reclaimed True") {
		t.Errorf("exit %d, output %q: PROGRAM should own the terminal's foreground group, and the shell get it back", r.code, r.stdout)
	}
}
