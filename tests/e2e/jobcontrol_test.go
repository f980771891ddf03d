package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// tmuxShell is an interactive bash on a real pseudo-terminal, driven with
// tmux send-keys: what a person at a terminal does.
type tmuxShell struct {
	t      *testing.T
	socket string
}

func newTmuxShell(t *testing.T) *tmuxShell {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("skipping: tmux is needed to drive a terminal (.ci/run installs it)")
	}
	sh := &tmuxShell{t: t, socket: fmt.Sprintf("sbtest-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-"))}
	rc := filepath.Join(t.TempDir(), "bashrc")
	os.WriteFile(rc, []byte("PS1='$ '\nPROMPT_COMMAND=\n"), 0o644)
	sh.tmux("new-session", "-d", "-s", "t", "-x", "200", "-y", "60", "bash --rcfile "+rc+" -i")
	t.Cleanup(func() { exec.Command("tmux", "-L", sh.socket, "kill-server").Run() })
	sh.waitFor(`\$ $`)
	return sh
}

func (sh *tmuxShell) tmux(args ...string) string {
	sh.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", sh.socket}, args...)...).CombinedOutput()
	if err != nil {
		sh.t.Fatalf("tmux %v: %v: %s", args, err, out)
	}
	return string(out)
}

// keys types keys (tmux key names: "Enter", "C-z", "C-c").
func (sh *tmuxShell) keys(k ...string) { sh.tmux(append([]string{"send-keys", "-t", "t"}, k...)...) }

// line types a command and Enter.
func (sh *tmuxShell) line(s string) { sh.keys("-l", s); sh.keys("Enter") }

func (sh *tmuxShell) screen() string {
	return strings.TrimRight(sh.tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "t"), "\n")
}

// waitFor waits until the screen matches re (multi-line mode), or fails.
func (sh *tmuxShell) waitFor(re string) string {
	sh.t.Helper()
	rx := regexp.MustCompile("(?m)" + re)
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := sh.screen()
		if rx.MatchString(s) {
			return s
		}
		if time.Now().After(deadline) {
			sh.t.Fatalf("the terminal never showed %q; screen:\n%s", re, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Ctrl-Z stops the job and gives the shell its prompt back; jobs shows it
// stopped; fg resumes it with the terminal, bg without; Ctrl-C ends it.
// The same keys on the native program must give the same job table.
func TestJobControlUnderPty(t *testing.T) {
	sb := sandbox(t)
	for _, mode := range []struct{ name, prefix string }{
		{"native", ""},
		{"sandboxed", sb + " run --log-level error -- "},
	} {
		t.Run(mode.name, func(t *testing.T) {
			sh := newTmuxShell(t)
			// fg: the terminal goes back to PROGRAM, which reads from it.
			sh.line(mode.prefix + `sh -c 'read x; echo got=$x'`)
			time.Sleep(300 * time.Millisecond) // let it reach read(2)
			sh.keys("C-z")
			sh.waitFor(`^\[1\]\+ +Stopped +.*read x`)
			sh.waitFor(`^\$ $`)
			sh.line("jobs")
			sh.waitFor(`^\$ jobs\n\[1\]\+ +Stopped `)
			sh.line("fg")
			time.Sleep(300 * time.Millisecond)
			sh.line("hello")
			sh.waitFor(`^got=hello$`)
			sh.line("echo rc=$?")
			sh.waitFor(`^rc=0$`)

			// bg: it runs on in the background; fg and Ctrl-C end it.
			sh.line("clear")
			sh.line(mode.prefix + "sleep 60")
			time.Sleep(300 * time.Millisecond)
			sh.keys("C-z")
			sh.waitFor(`^\[1\]\+ +Stopped +.*sleep 60`)
			sh.line("bg")
			sh.waitFor(`^\[1\]\+ .*sleep 60 &$`)
			sh.line("jobs")
			sh.waitFor(`^\[1\]\+ +Running +.*sleep 60 &$`)
			sh.line("fg")
			time.Sleep(300 * time.Millisecond)
			sh.keys("C-c")
			sh.line("echo rc=$?")
			sh.waitFor(`rc=130$`)
			// The shell has its terminal back: a command it runs reads it.
			sh.line("read y; echo shell-got=$y")
			time.Sleep(200 * time.Millisecond)
			sh.line("again")
			sh.waitFor(`^shell-got=again$`)
		})
	}
}

// A background job does not take the terminal from its shell.
func TestBackgroundJobLeavesTheTerminal(t *testing.T) {
	sb := sandbox(t)
	sh := newTmuxShell(t)
	sh.line(sb + ` run --log-level error -- sleep 2 &`)
	sh.waitFor(`^\[1\] [0-9]+$`)
	sh.line("read y; echo shell-got=$y")
	time.Sleep(200 * time.Millisecond)
	sh.line("mine")
	sh.waitFor(`^shell-got=mine$`)
}
