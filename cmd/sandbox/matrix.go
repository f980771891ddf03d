package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"sandbox/matrix"
	"sandbox/sentry"
)

// killAfter is how long a sandbox has, after the SIGTERM of --run-timeout,
// before it is killed: its own --grace (matrix.Grace), and time to report.
const killAfter = 5 * time.Second

// probeDest stands for a destination when a fault is checked on its own:
// of both protocols, so that a fault of either (reset, loss) passes.
const probeDest = "127.0.0.1:9"

func matrixCommand() *cli.Command {
	return &cli.Command{
		Name:      "matrix",
		Usage:     "run PROGRAM once per destination and fault, and report how it behaved",
		ArgsUsage: "[--] PROGRAM [ARGS...]",
		Description: `matrix tests how PROGRAM copes when each destination it uses fails, one
destination and one fault at a time.

1. Baseline. Without --policy, PROGRAM runs once under 'sandbox learn'
   (everything allowed and recorded); the destinations are the learned
   policy's allow rules. With --policy FILE, the baseline is 'sandbox run
   --policy FILE' and the destinations are FILE's allow rules ('*' and Unix
   globs are left out: no one fault stands for all they match).
2. Fault runs. For each destination D and each fault F of --faults, one run:
     sandbox run --grace 2s FLAG --allow-all -- PROGRAM      (or --policy FILE)
   Rule flags are checked first, so FLAG decides D and everything else is
   as in the baseline. FLAG by fault:
     refuse               --refuse D             (ECONNREFUSED)
     timeout:DURATION     --timeout D=DURATION   (ETIMEDOUT; timeout alone: 2m7s)
     unreachable[:host]   --unreachable D[=host] (ENETUNREACH, EHOSTUNREACH)
     deny[:EPERM]         --deny D[=EPERM]       (EACCES, EPERM)
     anything else        --fault D=F, a fault on the live connection:
                          NAME[:VALUE][@up|@down], several joined by +, e.g.
                          reset:0, blackhole, latency:2s, bandwidth:RATE,
                          limit:N, slice:N, slow-close:DUR, loss:P, duplicate:P
                          (aliases: reset-after-N is reset:N, NAME=VALUE is
                          NAME:VALUE). 'sandbox run' judges their values.
   Before any run, each fault is tried once ('sandbox run FLAG --allow-all
   -- true'): one the sandbox refuses stops matrix with its message. A
   fault that cannot apply to one destination is reported as skipped
   there, with the reason: unreachable on a Unix socket; a fault with no
   meaning on the destination's protocol (reset, limit, slice, slow-close,
   connect-latency on udp:; loss, duplicate on tcp: or unix:), or on the
   only protocol the baseline reached a DEST of both by. Without
   --faults, a sandbox whose run has no --fault yet runs only the connect
   verdicts of the default list, and says so below the table.
   Destinations on port 53 (the resolvers) are left out unless --dns:
   faulting name resolution is another question than faulting a peer (with
   --dns, the fault is on the resolver, and every lookup through it meets it).
3. Readings, per run:
     ok       exit 0
     failed   exit non-zero (PROGRAM's own status)
     hung     still running at --run-timeout: SIGTERM to the sandbox, which
              forwards it and kills what remains after 2s; SIGKILL 5s later
     crashed  PROGRAM killed by SIGSEGV, SIGABRT, SIGBUS, SIGILL, SIGFPE,
              SIGKILL or SIGTRAP (the sandbox exits 128+N)
     error    the sandbox itself failed (exit 125): its line is shown
     skipped  the fault cannot apply to this destination
   DIFFERS: the exit status or stdout (by SHA-256) is not the baseline's.
4. Report: a table on stdout, baseline first, in plan order whatever
   order the runs ended in; --out FILE also writes Markdown (.md), JSON
   (.json) or JUnit XML (.xml: one testsuite, one testcase per run named
   "D × F", a failure for each reading of --fail-on, stderr's last 20
   lines as system-err). A progress bar is shown on stderr when it is a
   terminal; nothing else is printed while the runs go.

--jobs N runs N fault runs at once. Each run must then be independent of
the others: PROGRAM must use its own temporary files, ports and sockets
(no fixed path or port that two runs would share), and keep no state
between runs; the baseline always runs alone, first. Runs have /dev/null
as stdin.

Every process a run starts is gone when matrix exits: each sandbox runs in
its own process group, matrix is a child subreaper, and it kills and reaps
whatever still descends from it at the end (or on SIGINT or SIGTERM).

Example:
  sandbox matrix --faults refuse,timeout:5s,reset:0 --jobs 4 \
      --out report.md --out junit.xml -- ./client --selftest

Exit status:
  0    every run ended, whatever its reading;
  1    a run (the baseline included) read hung, crashed or error
       (--fail-on READINGS changes the set; --fail-on none: never);
  125  an error of matrix itself: a bad flag, a fault the sandbox refuses,
       a baseline that could not run; one line on stderr names the cause;
  128+N  matrix was stopped by signal N (no report is written).`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "faults", Value: matrix.DefaultFaults,
				Usage: "the faults, comma-separated (see above)"},
			&cli.StringFlag{Name: "policy",
				Usage: "baseline under 'sandbox run --policy `FILE`', and fault FILE's allow destinations (default: learn them)"},
			&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: 1,
				Usage: "run `N` fault runs at once (PROGRAM's runs must not share files, ports or state)"},
			&cli.DurationFlag{Name: "run-timeout", Value: 30 * time.Second,
				Usage: "a run still going after this long reads hung and is stopped"},
			&cli.StringSliceFlag{Name: "out", Aliases: []string{"o"},
				Usage: "also write the report to `FILE`: .md, .json or .xml (JUnit); repeatable"},
			&cli.StringFlag{Name: "fail-on", Value: "hung,crashed,error",
				Usage: "exit 1 when a run has one of these `READINGS` (ok, failed, hung, crashed, error, skipped, or none)"},
			&cli.BoolFlag{Name: "dns",
				Usage: "fault the resolvers (port 53) too: PROGRAM's lookups, not its peers"},
			&cli.StringFlag{Name: "keep",
				Usage: "keep the baseline's learned policy and summary (baseline.yaml, baseline.json) in `DIR`"},
		},
		Action: matrixAction,
	}
}

// matrixConfig is matrix's command line, checked.
type matrixConfig struct {
	program    []string
	faults     []matrix.Fault
	policy     string
	jobs       int
	runTimeout time.Duration
	outs       []string
	failOn     []matrix.Reading
	dns        bool
	keep       string
	notes      []string
}

func matrixUsage(format string, a ...any) error {
	return &exitError{code: exitSandbox, err: fmt.Errorf("matrix: "+format, a...)}
}

// flagError is a bad command line: the cause, the fix, and where the help is.
func flagError(format string, a ...any) error {
	return matrixUsage(format+" (see 'sandbox matrix --help')", a...)
}

func parseMatrix(c *cli.Context) (*matrixConfig, error) {
	cfg := &matrixConfig{policy: c.String("policy"), jobs: c.Int("jobs"), runTimeout: c.Duration("run-timeout"),
		dns: c.Bool("dns"), keep: c.String("keep")}
	cfg.program = c.Args().Slice()
	if len(cfg.program) > 0 && cfg.program[0] == "--" {
		cfg.program = cfg.program[1:]
	}
	if len(cfg.program) == 0 {
		return nil, flagError("no PROGRAM given (usage: sandbox matrix [flags] -- PROGRAM [ARGS...])")
	}
	if cfg.jobs < 1 {
		return nil, flagError("--jobs %d: want 1 or more", cfg.jobs)
	}
	if cfg.runTimeout <= 0 {
		return nil, flagError("--run-timeout %s: want a duration above 0, such as 30s", cfg.runTimeout)
	}
	faults, err := matrix.ParseFaults(c.String("faults"))
	if err != nil {
		return nil, flagError("%v", err)
	}
	if !c.IsSet("faults") && !runHasFlag("fault") {
		// The default list names live-connection faults; a sandbox
		// without --fault can only run the connect verdicts of it.
		var kept, dropped []string
		var connect []matrix.Fault
		for _, f := range faults {
			if f.IsLive() {
				dropped = append(dropped, f.Name)
			} else {
				connect = append(connect, f)
				kept = append(kept, f.Name)
			}
		}
		faults = connect
		if len(dropped) > 0 {
			cfg.notes = append(cfg.notes, fmt.Sprintf("left out of the default faults: %s (this sandbox run has no --fault); ran %s",
				strings.Join(dropped, ", "), strings.Join(kept, ", ")))
		}
	}
	cfg.faults = faults
	if cfg.failOn, err = matrix.ParseReadings(c.String("fail-on")); err != nil {
		return nil, flagError("%v", err)
	}
	for _, o := range c.StringSlice("out") {
		if _, err := matrix.FormatOf(o); err != nil {
			return nil, flagError("%v", err)
		}
		if fi, err := os.Stat(filepath.Dir(o)); err != nil || !fi.IsDir() {
			return nil, flagError("--out %s: directory %s does not exist", o, filepath.Dir(o))
		}
		cfg.outs = append(cfg.outs, o)
	}
	if cfg.policy != "" {
		if _, err := os.Stat(cfg.policy); err != nil {
			return nil, flagError("--policy: %v", err)
		}
	}
	return cfg, nil
}

// runHasFlag says whether `sandbox run` has the flag --name.
func runHasFlag(name string) bool {
	for _, f := range runCommand().Flags {
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}

func matrixAction(c *cli.Context) error {
	cfg, err := parseMatrix(c)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return matrixUsage("finding the sandbox binary: %v", err)
	}
	// Orphans of the runs come to matrix, which kills and reaps them.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return matrixUsage("prctl(PR_SET_CHILD_SUBREAPER): %v", err)
	}
	defer reapDescendants()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	var stopped syscall.Signal
	var stopMu sync.Mutex
	go func() {
		select {
		case s := <-sigs:
			stopMu.Lock()
			stopped = s.(syscall.Signal)
			stopMu.Unlock()
			cancel()
		case <-ctx.Done():
		}
	}()
	interrupted := func() error {
		stopMu.Lock()
		defer stopMu.Unlock()
		if stopped == 0 {
			return nil
		}
		return &exitError{code: 128 + int(stopped), err: fmt.Errorf("matrix: stopped by %v: the runs were ended, no report written", stopped)}
	}

	r := &matrixRunner{exe: exe, ctx: ctx, timeout: cfg.runTimeout, killAfter: killAfter}
	if err := r.checkFaults(cfg.faults, cfg.jobs); err != nil {
		if ierr := interrupted(); ierr != nil {
			return ierr
		}
		return err
	}

	dir := cfg.keep
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return matrixUsage("--keep: %v", err)
		}
	} else {
		if dir, err = os.MkdirTemp("", "sandbox-matrix-"); err != nil {
			return matrixUsage("%v", err)
		}
		defer os.RemoveAll(dir)
	}
	opts := matrix.Options{Program: cfg.program, Policy: cfg.policy, Faults: cfg.faults, DNS: cfg.dns}
	learned, summary := filepath.Join(dir, "baseline.yaml"), filepath.Join(dir, "baseline.json")
	base := matrix.BaselineRun(opts, learned, summary)

	bar := newBar()
	started := time.Now()
	var cut func(string) bool
	if cfg.policy == "" {
		cut = matrix.IsSummaryHeader // learn's summary and messages follow PROGRAM's stderr
	}
	baseline := r.result(base, cut)
	if err := interrupted(); err != nil {
		bar.clear()
		return err
	}
	// 126 and 127: PROGRAM cannot be executed, or was not found.
	if baseline.Reading == matrix.Error || baseline.Exit == exitNoExec || baseline.Exit == exitNotFound {
		bar.clear()
		msg := matrix.SandboxError(baseline.Stderr)
		if !strings.Contains(msg, "\n") && baseline.Note != "" {
			msg = baseline.Note
		}
		return matrixUsage("the baseline failed to run: %s", msg)
	}
	policyFile := cfg.policy
	if policyFile == "" {
		policyFile = learned
	}
	data, err := os.ReadFile(policyFile)
	if err != nil {
		bar.clear()
		return matrixUsage("the baseline ('sandbox %s', exit %d) wrote no policy: %v", strings.Join(base.Args, " "), baseline.Exit, err)
	}
	dests, err := matrix.PolicyDests(data)
	if err != nil {
		bar.clear()
		return matrixUsage("reading the destinations of %s: %v", policyFile, err)
	}
	if b, err := os.ReadFile(summary); err == nil {
		// What the baseline reached: the protocols of a DEST of both.
		opts.Uses, _ = matrix.ReadUses(b)
	}
	plan := matrix.NewPlan(dests, opts)
	notes := cfg.notes
	for _, d := range plan.SkippedDNS {
		notes = append(notes, fmt.Sprintf("%s: not faulted: a resolver (port 53); --dns faults it too", d))
	}
	switch {
	case len(dests) > 0:
	case cfg.policy != "":
		notes = append(notes, "no destination to fault: the policy allows none")
	default:
		notes = append(notes, "no destination to fault: the baseline reached none")
	}
	bar.setMax(1 + len(plan.Runs))
	bar.add() // the baseline

	results := r.runAll(plan.Runs, cfg.jobs, bar)
	bar.clear()
	if err := interrupted(); err != nil {
		return err
	}
	matrix.Compare(baseline, results)
	rep := &matrix.Report{Program: cfg.program, Policy: cfg.policy, Started: started, Baseline: baseline,
		Runs: results, Notes: notes, FailOn: cfg.failOn}
	if err := rep.WriteTable(c.App.Writer); err != nil {
		return matrixUsage("%v", err)
	}
	for _, o := range cfg.outs {
		if err := writeReport(rep, o); err != nil {
			return matrixUsage("--out %s: %v", o, err)
		}
	}
	if rep.Failures() > 0 {
		return &exitError{code: 1}
	}
	return nil
}

func writeReport(rep *matrix.Report, path string) error {
	write, err := matrix.FormatOf(path)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := write(rep, &b); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// matrixRunner runs sandboxes.
type matrixRunner struct {
	exe       string
	ctx       context.Context // done when matrix is stopped
	timeout   time.Duration
	killAfter time.Duration // after the SIGTERM, until SIGKILL
}

// outcome is one sandbox process's end.
type outcome struct {
	matrix.Outcome
	duration time.Duration
	stdout   string // SHA-256, hex
	stderr   []string
	startErr error
}

// exec runs SANDBOX args in its own process group, stdin /dev/null, until
// it exits or timeout passes (or matrix is stopped): then SIGTERM, and
// SIGKILL to it and its tree killAfter later.
func (r *matrixRunner) exec(args []string, timeout time.Duration, cut func(string) bool) outcome {
	cmd := exec.Command(r.exe, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	h := sha256.New()
	tail := matrix.NewTail(matrix.TailLines, cut)
	cmd.Stdout, cmd.Stderr = h, tail
	// A descendant that keeps stdout or stderr open must not hold the run.
	cmd.WaitDelay = time.Second
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return outcome{startErr: err}
	}
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var o outcome
	select {
	case <-done:
	case <-timer.C:
		o.TimedOut = true
		terminate(cmd, done, r.killAfter)
	case <-r.ctx.Done():
		terminate(cmd, done, r.killAfter)
	}
	o.duration = time.Since(start)
	o.Started = true
	o.stdout = hex.EncodeToString(h.Sum(nil))
	o.stderr = tail.Lines()
	ps := cmd.ProcessState
	if ps == nil {
		o.Started, o.startErr = false, waitErr
		return o
	}
	ws := ps.Sys().(syscall.WaitStatus)
	switch {
	case ws.Exited():
		o.Exit = ws.ExitStatus()
	case ws.Signaled():
		o.Signal = ws.Signal()
		o.Exit = 128 + int(o.Signal)
	}
	return o
}

// terminate stops a sandbox: SIGTERM, which it forwards to PROGRAM and
// follows with SIGKILL to what remains after its --grace; then, if it is
// still there after wait, SIGKILL to it, its process group and every
// process below it.
func terminate(cmd *exec.Cmd, done <-chan struct{}, wait time.Duration) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return
	case <-time.After(wait):
	}
	tree := descendants(cmd.Process.Pid)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	for _, p := range tree {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	<-done
}

// result runs one planned run and reads it.
func (r *matrixRunner) result(run matrix.Run, cut func(string) bool) matrix.Result {
	o := r.exec(run.Args, r.timeout, cut)
	res := matrix.Result{Run: run, Exit: o.Exit, Duration: o.duration, Stdout: o.stdout, Stderr: o.stderr}
	res.Reading, res.Note = matrix.Read(o.Outcome)
	if res.Reading == matrix.Error && res.Note == "" {
		res.Note, _, _ = strings.Cut(matrix.SandboxError(o.stderr), "\n")
	}
	if !o.Started {
		res.Exit = -1
		res.Note = fmt.Sprintf("the sandbox did not start: %v", o.startErr)
	}
	return res
}

// runAll runs the plan, jobs at a time, and returns the results in plan
// order. Cells planned skipped (a fault with no meaning on the
// destination's protocol), and cells the sandbox refuses for their
// destination, are skipped.
func (r *matrixRunner) runAll(runs []matrix.Run, jobs int, bar *bar) []matrix.Result {
	results := make([]matrix.Result, len(runs))
	type done struct{ i int }
	work := make(chan int)
	finished := make(chan done)
	var wg sync.WaitGroup
	for range min(jobs, max(len(runs), 1)) {
		wg.Go(func() {
			for i := range work {
				run := runs[i]
				if run.Skip != "" {
					results[i] = matrix.Result{Run: run, Reading: matrix.Skipped, Exit: -1, Note: run.Skip}
				} else if reason := r.checkCell(run); reason != "" {
					results[i] = matrix.Result{Run: run, Reading: matrix.Skipped, Exit: -1, Note: reason}
				} else {
					results[i] = r.result(run, nil)
				}
				finished <- done{i}
			}
		})
	}
	go func() {
		defer close(work)
		for i := range runs {
			select {
			case work <- i:
			case <-r.ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(finished) }()
	for range finished {
		bar.add()
	}
	return results
}

// check runs `SANDBOX run --grace 2s FLAG --allow-all -- true`, and returns
// the sandbox's line when it refuses FLAG ("" when it runs).
func (r *matrixRunner) check(flag []string) string {
	args := append(append([]string{"run", "--grace", matrix.Grace.String()}, flag...), "--allow-all", "--", "true")
	o := r.exec(args, r.timeout, nil)
	switch {
	case !o.Started:
		return fmt.Sprintf("the sandbox did not start: %v", o.startErr)
	case o.TimedOut:
		return fmt.Sprintf("'sandbox %s' did not end within --run-timeout %s", strings.Join(args, " "), r.timeout)
	case o.Exit == 0:
		return ""
	}
	if len(o.stderr) == 0 {
		return fmt.Sprintf("'sandbox %s' exited %d", strings.Join(args, " "), o.Exit)
	}
	line, _, _ := strings.Cut(matrix.SandboxError(o.stderr), "\n")
	return line
}

// checkFaults tries each fault once on a stand-in destination: a fault the
// sandbox refuses there stops matrix with its line, before any run.
func (r *matrixRunner) checkFaults(faults []matrix.Fault, jobs int) error {
	errs := make([]string, len(faults))
	sem := make(chan struct{}, jobs)
	var wg sync.WaitGroup
	for i, f := range faults {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = r.check(f.Flag(probeDest))
		})
	}
	wg.Wait()
	for i, e := range errs {
		if e != "" {
			return matrixUsage("--faults %s: %s", faults[i].Spec, strings.ReplaceAll(e, probeDest, "DEST"))
		}
	}
	return nil
}

// checkCell says why the sandbox refuses a run's flag for its destination
// ("" when it does not).
func (r *matrixRunner) checkCell(run matrix.Run) string {
	if r.ctx.Err() != nil {
		return "not run: matrix was stopped"
	}
	return r.check(run.Fault.Flag(run.Dest))
}

// descendants are the processes below pid (sentry.Descendants).
func descendants(pid int) []int { return sentry.Descendants(pid) }

// reapDescendants kills and reaps every process still below matrix: what a
// run left behind came to matrix, its subreaper.
func reapDescendants() {
	self := os.Getpid()
	for range 500 {
		left := descendants(self)
		for _, p := range left {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
		if len(left) == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// bar is the progress bar on a terminal's stderr; without one it does
// nothing.
type bar struct{ p *progressbar.ProgressBar }

func newBar() *bar {
	if !isTerminal(2) {
		return &bar{}
	}
	return &bar{p: progressbar.NewOptions(-1,
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription("sandbox matrix"),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish())}
}

func (b *bar) add() {
	if b.p != nil {
		_ = b.p.Add(1)
	}
}

func (b *bar) setMax(n int) {
	if b.p != nil {
		b.p.ChangeMax(n)
	}
}

func (b *bar) clear() {
	if b.p != nil {
		_ = b.p.Finish()
		_ = b.p.Clear()
	}
}
