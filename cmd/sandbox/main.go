// Command sandbox runs a program under a seccomp supervisor that decides
// every connect(2) it makes. See README.md.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"sandbox/netstack"
	"sandbox/sentry"
)

// Exit codes for the sandbox's own failures follow docker run.
const (
	exitSandbox  = 125 // an error of the sandbox itself
	exitNoExec   = 126 // the program cannot be executed
	exitNotFound = 127 // the program was not found
)

// exitError carries an exit code out of a command's action.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func main() {
	os.Exit(runMain(os.Args, os.Stdout, os.Stderr))
}

// exitCode is set by the run command to the program's own status.
var exitCode int

func runMain(args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	if err := app.Run(args); err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.err != nil {
				fmt.Fprintf(stderr, "sandbox: %v\n", ee.err)
			}
			return ee.code
		}
		fmt.Fprintf(stderr, "sandbox: %v\n", err)
		return exitSandbox
	}
	return exitCode
}

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:  "sandbox",
		Usage: "run a program under a supervisor that decides every connect(2) and addressed send",
		Description: `sandbox starts PROGRAM under a seccomp filter that traps connect(2),
sendto(2) with an address, and every sendmsg(2) and sendmmsg(2) (their
address is behind a pointer), with user notification. The sandbox process is
the supervisor: it decides each call against its netstack and answers
exactly as Linux would. Allowed calls are performed by the supervisor on
the program's own socket, so the program sees a real, working connection.

Start with: sandbox run --help. To find out what a program needs and how
it copes when the network fails:
   sandbox learn -- PROGRAM    writes sandbox.learned.yaml, the policy it needs
   sandbox run --policy sandbox.learned.yaml --fault DEST=reset:0 -- PROGRAM
   sandbox matrix -- PROGRAM   every destination it uses under every fault`,
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: true,
		Version:         version(),
		Commands:        usageErrors([]*cli.Command{runCommand(), learnCommand(), matrixCommand(), policyCommand()}, "sandbox"),
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return usageError("sandbox", err)
		},
		CommandNotFound: func(c *cli.Context, name string) {
			// urfave/cli has no error return here: exit as a usage error does.
			fmt.Fprintf(c.App.ErrWriter, "sandbox: no command %q: the commands are run, learn, matrix and policy (see 'sandbox --help')\n", name)
			os.Exit(exitSandbox)
		},
	}
}

// usageError is a bad flag or argument: one line naming it and where the
// help is, exit status 125, and not the whole help text.
func usageError(path string, err error) error {
	return &exitError{code: exitSandbox, err: fmt.Errorf("%v (see '%s --help')", err, path)}
}

// usageErrors gives every command, subcommands included, the one-line
// usage error: without it urfave/cli prints a command's whole help after the
// error, to stdout.
func usageErrors(cmds []*cli.Command, parent string) []*cli.Command {
	for _, c := range cmds {
		path := parent + " " + c.Name
		c.OnUsageError = func(_ *cli.Context, err error, _ bool) error { return usageError(path, err) }
		usageErrors(c.Subcommands, path)
	}
	return cmds
}

// version is the module version and VCS revision the binary was built from.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v, rev, dirty := bi.Main.Version, "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	// A pseudo-version already names the revision.
	if v == "(devel)" && rev != "" {
		v = "devel " + rev
		if dirty {
			v += "+dirty"
		}
	}
	return v + ", " + bi.GoVersion
}

func runCommand() *cli.Command {
	rules := &ruleFlags{fromEnv: map[string]bool{}}
	return &cli.Command{
		UseShortOptionHandling: true, // -vv
		Name:                   "run",
		Usage:                  "run PROGRAM under the supervisor",
		ArgsUsage:              "[--] PROGRAM [ARGS...]",
		Description: `PROGRAM runs with the sandbox's stdin, stdout, stderr, environment and
working directory. Every process and thread it starts is covered.

Exit status:
  PROGRAM's own status, or 128+N when signal N killed it;
  125  an error of the sandbox itself (one line on stderr names the cause);
  126  PROGRAM cannot be executed;
  127  PROGRAM was not found.

Signals SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH sent
to the sandbox are forwarded to PROGRAM (to its process group with
--signal-group). After the first SIGTERM, PROGRAM has --grace to exit, then
everything left is killed. As PID 1 (a container's ENTRYPOINT) or not, the
sandbox reaps every orphan of PROGRAM's tree; when PROGRAM exits, whatever it
left running is killed (a warning lists each by pid and command), unless
--wait-all. With a terminal on stdin, PROGRAM gets the foreground process
group (docker run -it); a background job leaves the terminal to its shell.
Ctrl-Z stops PROGRAM and the sandbox with it, so the shell sees a stopped
job: fg and bg resume both. PROGRAM inherits the signal mask and the ignored
signals of the sandbox's caller, as natively (nohup, a shell's background
job); an ignored signal is not forwarded either.

Policy: with no --policy and no rule flags, PROGRAM may connect only to
sockets its own process tree holds: a destination counts as its own only if
every socket the kernel could deliver to belongs to the tree (TCP listeners
and UDP sockets at a local address of the sandbox's network namespace, Unix
sockets reached by path or by exact abstract name); every other connect, or
send to an address, is denied with EACCES and logged at warning level with
the flag that would allow it. Rule flags are checked first, in the order given, then the policy
file's rules.
DEST is [tcp:|udp:]ADDR[/PREFIX][:PORT[-PORT]] (IPv6 in brackets:
[::1]:8080), unix:PATH-GLOB (the path the kernel connects to, after
symbolic links: unix:/run/postgresql/* for the sockets in a directory) or
unix:@ABSTRACT-GLOB, or a host name: [tcp:|udp:]NAME[:PORT] or
"*.DOMAIN" for the names below DOMAIN. A name matches the addresses that
PROGRAM's own DNS lookups returned for it (within their TTL and
--dns-grace; the lookups are observed when a rule names a host) and, for an
address PROGRAM did not look up, those it had when the policy loaded. A
deny of a name on every port answers its lookups NXDOMAIN. A DEST that
could match nothing is an error naming the fix. On Unix sockets, refuse is a socket file nobody listens on
(ECONNREFUSED) and timeout a listener whose backlog is full (a blocking
connect waits, until SO_SNDTIMEO: EAGAIN; a non-blocking one gets EAGAIN);
unreachable, and a duration or delay, have no Unix twin and are refused.

Layers: before PROGRAM starts, inherited descriptors above 2 are closed
(--preserve-fds N keeps 3..3+N-1), a root PROGRAM keeps only Docker's default
capabilities without NET_RAW (--keep-caps), new user namespaces are refused
(--allow-userns), and PROGRAM is put in a Landlock domain, so that it cannot
ptrace, read or write the memory of, take descriptors from, or signal
processes outside the sandbox (--landlock=false). A layer that is asked for
and unavailable stops the sandbox (125) before PROGRAM runs.

Logs: every decision is logged with the fields pid, fd, family, type, dst,
verdict, errno and latency: denials at warn, the rest at info. The default
level is warn for --log-format text (denials, leftover processes, errors)
and info for json (every decision, for machines and containers); -v shows
every decision in text, -vv also the calls answered before any decision
(verdict=native, e.g. glibc's probe of a missing nscd socket) and sendmsg
calls that name no address. Timestamps are RFC 3339 with milliseconds. Text
is never coloured unless --color says so. When stderr is a terminal and a
call was denied, the --summary table follows PROGRAM's end.

Every flag can also be set through the environment variable SANDBOX_<FLAG>
(SANDBOX_LOG_FORMAT, SANDBOX_ALLOW, ...; rule variables take comma-separated
lists); a flag given on the command line wins over its variable.`,
		Flags:  cacheNames(runFlags(rules)),
		Action: func(c *cli.Context) error { return runAction(c, rules, nil) },
	}
}

// runFlags are the flags of run, which learn shares.
func runFlags(rules *ruleFlags) []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "log-level", EnvVars: []string{"SANDBOX_LOG_LEVEL"}, Category: "Logging",
			Usage: "log level: panic, fatal, error, warn, info, debug or trace (default: warn for text, info for json)"},
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Count: &verbosity, Category: "Logging",
			Usage: "log every decision (-v: info), and calls answered before any decision (-vv: debug)"},
		&cli.StringFlag{Name: "log-format", Value: "text", EnvVars: []string{"SANDBOX_LOG_FORMAT"}, Category: "Logging",
			Usage: "text (key=value lines, never coloured unless --color) or json (one object per line)"},
		&cli.StringFlag{Name: "color", Value: "never", EnvVars: []string{"SANDBOX_COLOR"}, Category: "Logging",
			Usage: "colour text logs: never, always, or auto (only on a terminal, and not if NO_COLOR is set)"},
		&cli.StringFlag{Name: "log-file", EnvVars: []string{"SANDBOX_LOG_FILE"}, Category: "Logging",
			Usage: "append logs to `FILE` instead of stderr"},
		&cli.BoolFlag{Name: "signal-group", EnvVars: []string{"SANDBOX_SIGNAL_GROUP"}, Category: "Process",
			Usage: "forward signals to PROGRAM's whole process group, not only PROGRAM"},
		&cli.DurationFlag{Name: "grace", Value: 10 * time.Second, EnvVars: []string{"SANDBOX_GRACE"}, Category: "Process",
			Usage: "after the first SIGTERM, wait this long, then SIGKILL whatever remains (0: wait forever)"},
		&cli.BoolFlag{Name: "wait-all", EnvVars: []string{"SANDBOX_WAIT_ALL"}, Category: "Process",
			Usage: "when PROGRAM exits, wait for its remaining descendants instead of killing them (the default)"},
		&cli.BoolFlag{Name: "raw-sockets", EnvVars: []string{"SANDBOX_RAW_SOCKETS"}, Category: "Policy",
			Usage: "allow raw, packet and XDP sockets and keep CAP_NET_RAW (by default PROGRAM lacks it and the kernel refuses them; they reach peers without connect)"},
		&cli.BoolFlag{Name: "landlock", Value: true, EnvVars: []string{"SANDBOX_LANDLOCK"}, Category: "Layers",
			Usage: "put PROGRAM in a Landlock domain: no ptrace, memory access, descriptor taking or signals to processes outside the sandbox (--landlock=false disables)"},
		&cli.BoolFlag{Name: "allow-userns", EnvVars: []string{"SANDBOX_ALLOW_USERNS"}, Category: "Layers",
			Usage: "allow new user namespaces (refused by default: unshare, clone and setns with CLONE_NEWUSER get EPERM, clone3 ENOSYS)"},
		&cli.BoolFlag{Name: "keep-caps", EnvVars: []string{"SANDBOX_KEEP_CAPS"}, Category: "Layers",
			Usage: "keep all of PROGRAM's capabilities (by default a root PROGRAM keeps only Docker's default set without NET_RAW; NET_RAW too with --raw-sockets)"},
		&cli.IntFlag{Name: "preserve-fds", EnvVars: []string{"SANDBOX_PRESERVE_FDS"}, Category: "Layers",
			Usage: "pass inherited descriptors 3 to 3+`N`-1 to PROGRAM (every other one above 2 is closed)"},
		&cli.BoolFlag{Name: "summary", EnvVars: []string{"SANDBOX_SUMMARY"}, Category: "Logging",
			Usage: "when PROGRAM ends, print a table of destination, count, verdict and errno to stderr (on a terminal it is printed anyway when a call was denied)"},
		&cli.StringFlag{Name: "summary-json", EnvVars: []string{"SANDBOX_SUMMARY_JSON"}, Category: "Logging",
			Usage: "when PROGRAM ends, write the summary as one JSON object to `FILE`"},
		&cli.StringFlag{Name: "observe-dns", Value: "auto", EnvVars: []string{"SANDBOX_OBSERVE_DNS"}, Category: "Names",
			Usage: "put the DNS forwarder between PROGRAM and its resolvers (UDP and TCP port 53), to learn which name each address came from: auto (when a rule names a host, and under learn), on, off"},
		&cli.DurationFlag{Name: "dns-grace", Value: netstack.DefaultNameGrace, EnvVars: []string{"SANDBOX_DNS_GRACE"}, Category: "Names",
			Usage: "how long a name keeps covering an address after its DNS answer's TTL ran out"},
	}, policyFlags(rules)...)
}

// runAction runs PROGRAM; under learn (l non-nil) with learn's default and
// its recorder.
func runAction(c *cli.Context, rules *ruleFlags, l *learner) error {
	argv := c.Args().Slice()
	if len(argv) > 0 && argv[0] == "--" {
		argv = argv[1:]
	}
	if len(argv) == 0 {
		return &exitError{code: exitSandbox, err: errors.New("run: no PROGRAM given (usage: sandbox run [flags] -- PROGRAM [ARGS...])")}
	}
	lo := logOptions{level: c.String("log-level"), verbosity: verbosity, format: c.String("log-format"),
		color: c.String("color"), file: c.String("log-file")}
	log, closeLog, err := newLogger(lo, c.App.ErrWriter)
	if err != nil {
		return &exitError{code: exitSandbox, err: err}
	}
	defer closeLog()

	policy, err := loadPolicy(c, rules)
	if err != nil {
		return &exitError{code: exitSandbox, err: err}
	}
	warnUnresolved(log, policy)
	if l != nil {
		if policy, err = policy.WithDefault(netstack.DefaultLearn); err != nil {
			return &exitError{code: exitSandbox, err: err}
		}
	}
	observe := c.String("observe-dns")
	switch observe {
	case "auto":
		observe = map[bool]string{true: "on", false: "off"}[l != nil || policy.HasNameRules()]
	case "on", "off":
	default:
		return &exitError{code: exitSandbox, err: fmt.Errorf("--observe-dns %q: want auto, on or off", observe)}
	}
	if c.Duration("dns-grace") < 0 {
		return &exitError{code: exitSandbox, err: fmt.Errorf("--dns-grace %s: want a duration of 0 or more", c.Duration("dns-grace"))}
	}
	path, err := lookPath(argv[0])
	if err != nil {
		return err
	}
	spec := sentry.Spec{
		Path:        path,
		Argv:        argv,
		Env:         os.Environ(),
		FailAt:      os.Getenv("SANDBOX_TEST_FAIL_AT"),
		Foreground:  isForeground(0),
		SignalGroup: c.Bool("signal-group"),
		Grace:       c.Duration("grace"),
		WaitAll:     c.Bool("wait-all"),
		Filter:      sentry.FilterOptions{RawSockets: c.Bool("raw-sockets")},
		Layers: sentry.LayerOptions{Landlock: c.Bool("landlock"), AllowUserns: c.Bool("allow-userns"),
			KeepCaps: c.Bool("keep-caps"), PreserveFDs: c.Int("preserve-fds")},
	}
	if spec.Layers.PreserveFDs < 0 || spec.Layers.PreserveFDs > 1<<16 {
		return &exitError{code: exitSandbox, err: fmt.Errorf("--preserve-fds %d: want 0 to 65536", spec.Layers.PreserveFDs)}
	}
	cfg := sentry.Config{Decider: policy, Log: log, Summary: c.Bool("summary"), SummaryJSON: c.String("summary-json"),
		// A person at a terminal sees the warnings, and then the table
		// that puts them together, when anything was denied.
		SummaryOnDenial: lo.format == "text" && lo.file == "" && isTerminal(2),
		// At a terminal, a denial's warning comes before the program's
		// own error about it, not in the middle of its line.
		SyncDenials: lo.file == "" && isTerminal(2)}
	if observe == "on" || policy.HasNameRules() {
		cfg.Names = netstack.NewNames(c.Duration("dns-grace"))
		cfg.ObserveDNS = observe == "on"
		// The hosts file PROGRAM starts with names addresses too. One it
		// writes later, or a root it enters, names nothing: it could then
		// give an allowed name any address.
		if b, err := os.ReadFile("/etc/hosts"); err == nil {
			cfg.Names.SetHosts(netstack.ParseHosts(string(b)))
		}
	}
	if l != nil {
		cfg.Observe, cfg.TellSelf, cfg.Summary = l.observe, true, true
	}
	code, err := sentry.Run(spec, cfg)
	if err != nil {
		return &exitError{code: code, err: err}
	}
	exitCode = code
	if l != nil {
		return l.finish(c, argv, code)
	}
	return nil
}

// lookPath finds PROGRAM in $PATH the way a shell would. Names with a slash
// are left to execve, whose errno then picks 126 or 127.
func lookPath(name string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	p, err := exec.LookPath(name)
	if errors.Is(err, exec.ErrDot) {
		return p, nil
	}
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return "", &exitError{code: exitNotFound, err: fmt.Errorf("%s: executable file not found in $PATH", name)}
		}
		return "", &exitError{code: exitNoExec, err: fmt.Errorf("%s: %v", name, errors.Unwrap(err))}
	}
	return p, nil
}

// verbosity counts -v flags.
var verbosity int

type logOptions struct {
	level     string // "" picks by format and verbosity
	verbosity int
	format    string
	color     string
	file      string
}

// newLogger builds the logger. The defaults: text for a person, at warn
// (denials, leftovers, errors: what needs attention); JSON for machines and
// containers, at info (every decision).
func newLogger(o logOptions, stderr io.Writer) (*logrus.Logger, func(), error) {
	log := logrus.New()
	lvl := logrus.WarnLevel
	if o.format == "json" {
		lvl = logrus.InfoLevel
	}
	switch {
	case o.level != "":
		l, err := logrus.ParseLevel(o.level)
		if err != nil {
			return nil, nil, fmt.Errorf("--log-level %q: want panic, fatal, error, warn, info, debug or trace", o.level)
		}
		lvl = l
	case o.verbosity == 1:
		lvl = logrus.InfoLevel
	case o.verbosity == 2:
		lvl = logrus.DebugLevel
	case o.verbosity > 2:
		lvl = logrus.TraceLevel
	}
	log.SetLevel(lvl)
	var colour bool
	switch o.color {
	case "never":
	case "always":
		colour = true
	case "auto":
		colour = o.file == "" && isTerminal(2) && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
	default:
		return nil, nil, fmt.Errorf("--color %q: want never, always or auto", o.color)
	}
	switch o.format {
	case "text":
		log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, TimestampFormat: sentry.LogTimeFormat,
			DisableColors: !colour, ForceColors: colour})
	case "json":
		log.SetFormatter(&logrus.JSONFormatter{TimestampFormat: sentry.LogTimeFormat})
	default:
		return nil, nil, fmt.Errorf("--log-format %q: want text or json", o.format)
	}
	log.SetOutput(stderr)
	closeFn := func() {}
	if o.file != "" {
		f, err := os.OpenFile(o.file, os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("--log-file: %w", err)
		}
		log.SetOutput(f)
		closeFn = func() { f.Close() }
	}
	return log, closeFn, nil
}

// isForeground: fd is a terminal whose foreground process group is ours.
// Only then may PROGRAM be given the terminal: a background job that took it
// would steal it from its shell.
func isForeground(fd int) bool {
	pg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	return err == nil && pg == unix.Getpgrp()
}

func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}
