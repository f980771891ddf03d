package main

import (
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"sandbox/internal/shell"
	"sandbox/netstack"
	"sandbox/netstack/learn"
	"sandbox/sentry"
)

// defaultLearnOut is where learn writes without --out or --merge.
const defaultLearnOut = "sandbox.learned.yaml"

func learnCommand() *cli.Command {
	rules := &ruleFlags{fromEnv: map[string]bool{}}
	l := &learner{}
	return &cli.Command{
		UseShortOptionHandling: true,
		Name:                   "learn",
		Usage:                  "run PROGRAM, allowing and recording every destination, and write the policy it needs",
		ArgsUsage:              "[--out FILE] [--merge FILE] [--] PROGRAM [ARGS...]",
		Description: `learn runs PROGRAM as run does, under the rules given (flags, --policy),
but what no rule decides is allowed and recorded instead of denied. When
PROGRAM ends it writes a minimal policy: default: deny (self, if the tree
talked to its own sockets), and one allow rule per destination actually
used, each with a comment giving its count, its first use and the process
(comm[pid]) that made it:
  - by host name where PROGRAM got the address from a DNS lookup (its
    lookups are observed: see --observe-dns) or from /etc/hosts;
  - by address and port otherwise; a port of the ephemeral range
    (ip_local_port_range) at an address of this machine (loopback, an
    interface's), where a server that binds port 0 gets another each run,
    is written as the whole range, and a remote host keeps its port;
  - by absolute path for Unix sockets.
The summary table (--summary) follows PROGRAM's end.

--out FILE writes the policy there (- for stdout); without it, learn writes
` + defaultLearnOut + ` and refuses to overwrite one that exists.
--merge FILE adds, after FILE's rules, a rule for each destination that
FILE leaves to its default and does not allow, keeping FILE's comments and
order, writes FILE back (or to --out) and prints what it added: run learn
once per test of a suite, merging into one policy. A destination that a
rule of FILE decides otherwise (deny, refuse, redirect, ...) gets no rule,
as the first matching rule wins: learn names that rule (FILE:LINE) instead;
so too the tree's own sockets, if FILE's default is neither self nor allow.
FILE is checked before PROGRAM runs: one learn could not add to (a flow
list rules: [ ... ]) is refused then.

Re-running PROGRAM with 'sandbox run --policy FILE' then gives no denial,
for the same behaviour (a program that reaches new destinations, or new
addresses without a lookup, needs them learned too).

Exit status: PROGRAM's, as for run; 125 if the policy could not be written.`,
		Flags: cacheNames(append(runFlags(rules),
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, EnvVars: []string{"SANDBOX_OUT"}, Category: "Learn",
				Usage: "write the learned policy to `FILE` (- for stdout; default " + defaultLearnOut + ", never overwritten)"},
			&cli.StringFlag{Name: "merge", EnvVars: []string{"SANDBOX_MERGE"}, Category: "Learn",
				Usage: "add what is new to the policy in `FILE` and write it back (or to --out), keeping its comments and order"},
		)),
		Before: func(c *cli.Context) error { return l.check(c) },
		Action: func(c *cli.Context) error { return runAction(c, rules, l) },
	}
}

// learner records the uses of one learn run.
type learner struct {
	out, merge string
	mergeData  []byte

	mu   sync.Mutex
	uses map[useKey]*learn.Use
}

// useKey aggregates uses as the policy will write them.
type useKey struct {
	kind     learn.Kind
	proto    string
	addr     string
	name     string
	path     string
	abstract bool
	family   string
	self     bool
}

// check validates --out and --merge before PROGRAM runs: nothing it does is
// lost to a policy that cannot be written.
func (l *learner) check(c *cli.Context) error {
	l.out, l.merge = c.String("out"), c.String("merge")
	fail := func(err error) error { return &exitError{code: exitSandbox, err: err} }
	if l.merge != "" {
		b, err := os.ReadFile(l.merge)
		if err != nil {
			return fail(fmt.Errorf("--merge: %w", err))
		}
		if _, err := netstack.ParsePolicy(l.merge, b, resolve); err != nil {
			return fail(fmt.Errorf("--merge: %w", err))
		}
		// A valid policy Merge cannot add to (rules: [ ... ], a flow
		// mapping) is refused now, with the error the merge would give
		// after PROGRAM: not once everything PROGRAM did is learned.
		if err := learn.Mergeable(b, l.merge); err != nil {
			return fail(fmt.Errorf("--merge: %w", err))
		}
		l.mergeData = b
	}
	if l.out == "" && l.merge == "" {
		if _, err := os.Stat(defaultLearnOut); err == nil {
			return fail(fmt.Errorf("learn: %s exists: pass --out FILE to overwrite a file, or --merge %s to add to it", defaultLearnOut, defaultLearnOut))
		}
		l.out = defaultLearnOut
	}
	if l.out != "" && l.out != "-" {
		dir := filepath.Dir(l.out)
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return fail(fmt.Errorf("--out %s: directory %s does not exist", l.out, dir))
		}
	}
	return nil
}

// observe is sentry.Config.Observe.
func (l *learner) observe(u sentry.Use) {
	if u.Action != netstack.Allow {
		return // denied or otherwise decided by the given rules: not a need
	}
	r := u.Req
	lu := learn.Use{First: u.At, Comm: u.Comm, PID: u.PID, Self: u.Self, Sends: u.Syscall != "connect"}
	switch {
	case (r.Family == netstack.FamilyInet || r.Family == netstack.FamilyInet6) && r.Addr.IsValid() &&
		(r.Type == netstack.TypeStream || r.Type == netstack.TypeDgram):
		lu.Kind, lu.Proto = learn.Inet, "tcp"
		if r.Type == netstack.TypeDgram {
			lu.Proto = "udp"
		}
		a := r.Addr.Addr().Unmap().WithZone("")
		lu.Addr = netip.AddrPortFrom(a, r.Addr.Port())
		if r.Addr.Port() != 53 { // a resolver is reached by the address resolv.conf gives
			lu.Name = r.Name()
		}
	case r.Family == netstack.FamilyUnix:
		if !r.Unix.Abstract && r.Unix.Path == "" {
			return // unnamed: no destination
		}
		lu.Kind, lu.Abstract = learn.Unix, r.Unix.Abstract
		lu.Path = r.Unix.Path
		if r.Unix.Abstract {
			lu.Path = r.Unix.Name
		}
	case r.Family == netstack.FamilyUnspec:
		return
	default:
		lu.Kind, lu.Family = learn.Other, r.Family.String()
	}
	k := useKey{kind: lu.Kind, proto: lu.Proto, addr: lu.Addr.String(), name: lu.Name, path: lu.Path,
		abstract: lu.Abstract, family: lu.Family, self: lu.Self}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.uses == nil {
		l.uses = map[useKey]*learn.Use{}
	}
	if old := l.uses[k]; old != nil {
		old.Count++
		return
	}
	lu.Count = 1
	l.uses[k] = &lu
}

// finish writes the policy once PROGRAM has ended.
func (l *learner) finish(c *cli.Context, argv []string, code int) error {
	l.mu.Lock()
	uses := make([]learn.Use, 0, len(l.uses))
	for _, u := range l.uses {
		uses = append(uses, *u)
	}
	l.mu.Unlock()
	o := learn.Options{Ephemeral: ephemeralRange(), Local: localAddrs(), Command: argv, Now: time.Now()}
	stderr := c.App.ErrWriter
	if code != 0 {
		fmt.Fprintf(stderr, "sandbox: learn: PROGRAM exited with status %d: the policy holds what it used until then\n", code)
	}
	fail := func(err error) error { return &exitError{code: exitSandbox, err: err} }
	if l.merge != "" {
		dst := l.out
		if dst == "" {
			dst = l.merge
		}
		name := dst // what the merged policy's rules are named by
		if dst == "-" {
			name = "(stdout)"
		}
		data := l.mergeData
		if dst == l.merge {
			// Learns across a test suite may run at once, each merging into
			// the same file: the merge is made into the file as it is now,
			// under a lock on its directory (the file itself is replaced by
			// a rename, which a lock on it would not survive), so that no
			// run's rules overwrite another's.
			unlock, err := lockDir(filepath.Dir(l.merge))
			if err != nil {
				return fail(fmt.Errorf("--merge: locking %s: %w", filepath.Dir(l.merge), err))
			}
			defer unlock()
			if data, err = os.ReadFile(l.merge); err != nil {
				return fail(fmt.Errorf("--merge: %w", err))
			}
		}
		m, err := mergeUses(l.merge, name, data, memoResolve(resolve), uses, o)
		if err != nil {
			return fail(fmt.Errorf("--merge: %w", err))
		}
		for _, r := range m.added {
			fmt.Fprintf(stderr, "sandbox: learn: added allow: %s\n", r.Dest)
		}
		for _, d := range m.decided {
			fmt.Fprintf(stderr, "sandbox: learn: %s\n", d.message(name))
		}
		switch {
		case len(m.added) == 0 && len(m.decided) == 0:
			fmt.Fprintf(stderr, "sandbox: learn: nothing new: %s already allows every destination PROGRAM used\n", l.merge)
		case len(m.added) == 0:
			fmt.Fprintf(stderr, "sandbox: learn: nothing added to %s\n", l.merge)
		}
		if len(m.added) == 0 && dst == l.merge {
			return nil
		}
		return writePolicy(stderr, dst, m.out, plural(len(m.added), "rule")+" added", argv)
	}
	rules := learn.Rules(uses, o)
	return writePolicy(stderr, l.out, learn.Write(uses, o), plural(len(rules), "rule"), argv)
}

// merged is what a merge into a policy file gives.
type merged struct {
	out     []byte       // the new file
	added   []learn.Rule // the rules added, in file order
	decided []decided    // what out, when run, does not allow
}

// decided is one destination PROGRAM used that the merged policy, when
// run, does not allow, and what decides it there.
type decided struct {
	dest    string // the destination used, e.g. "tcp:10.0.0.1:8081"; for the tree's own sockets, one of them
	self    bool   // the tree's own sockets
	count   int
	sends   bool
	by      string // what decides it: "FILE:LINE: deny: DEST", "FILE:LINE: default: deny", ...
	verdict string // what PROGRAM gets there: "deny", "redirect 10.0.0.9:80", ...
	byRule  bool   // by is a rule of the file, which comes before any rule learn adds
}

func (d decided) message(file string) string {
	what := "connect"
	if d.sends {
		what = "send"
	}
	n := plural(d.count, what)
	switch {
	case d.byRule && d.self:
		return fmt.Sprintf("not allowed: the tree's own socket %s (%s): %s decides it: under %s PROGRAM gets %s there; edit that rule to allow it",
			d.dest, n, d.by, file, d.verdict)
	case d.byRule:
		return fmt.Sprintf("not added: %s (%s): %s decides it first, so an allow after it would never match: under %s PROGRAM gets %s there; edit that rule to allow it",
			d.dest, n, d.by, file, d.verdict)
	case d.self:
		return fmt.Sprintf("not allowed: the tree's own sockets (%s, e.g. %s): %s decides them, so that under %s PROGRAM gets %s there, and learn does not change a default: write default: self to allow them",
			n, d.dest, d.by, file, d.verdict)
	}
	return fmt.Sprintf("not allowed: %s (%s): %s decides it, so that under %s PROGRAM gets %s there: no rule learn can write allows it", d.dest, n, d.by, file, d.verdict)
}

// mergeUses merges uses into the policy file data, read from path, and
// says what the result, named name, does not allow when run.
//
// Learn adds a rule after the file's rules for each use that the file does
// not allow and that none of its rules decides: the default decides it (or
// the virtual network, which also comes after every rule), and so the rule
// added decides it instead. A use that one of the file's own rules decides
// otherwise (deny, refuse, redirect, ...) gets no rule: the first matching
// rule wins, so an allow after that rule could never match, and each merge
// would add it again. That rule is the user's and stays; so does the
// default (learn never changes it), which may deny the tree's own sockets.
// Every use the merged policy then does not allow, asked of the merged
// policy itself so that FILE:LINE is the written file's, is in decided.
func mergeUses(path, name string, data []byte, resolve func(string) ([]netip.Addr, error), uses []learn.Use, o learn.Options) (merged, error) {
	p, err := netstack.ParsePolicy(path, data, resolve)
	if err != nil {
		return merged{}, err
	}
	var fresh []learn.Use
	for _, u := range uses {
		d := p.Decide(requestOf(u))
		if d.Action != netstack.Allow && !u.Self && !isRule(p, d.Rule) {
			fresh = append(fresh, u)
		}
	}
	out, added, err := learn.Merge(data, path, fresh, nil, o)
	if err != nil {
		return merged{}, err
	}
	m := merged{out: out, added: added}
	q, err := netstack.ParsePolicy(name, out, resolve)
	if err != nil {
		return merged{}, fmt.Errorf("the merged policy would not be valid, so %s is left as it is: %w", path, err)
	}
	at := map[string]int{} // decided by what it is and what decides it
	for _, u := range uses {
		d := q.Decide(requestOf(u))
		if d.Action == netstack.Allow {
			continue
		}
		dc := decided{dest: useText(u), self: u.Self, by: d.Rule, verdict: verdictText(d), byRule: isRule(q, d.Rule)}
		switch {
		case dc.byRule:
		case d.Rule != "":
			if !strings.HasPrefix(dc.by, name+":") {
				dc.by = name + ": " + dc.by // a virtual network's answer
			}
		case u.Self && q.Default().Self:
			continue // the tree's own socket, under default: self
		default:
			dc.by = name + ": default: " + d.Action.String()
			if n := learn.KeyLine(out, "default"); n > 0 {
				dc.by = fmt.Sprintf("%s:%d: default: %s", name, n, d.Action.String())
			}
		}
		k := dc.by
		if !dc.self || dc.byRule {
			k = dc.dest + "\x00" + k
		}
		if i, ok := at[k]; ok {
			m.decided[i].count += max(u.Count, 1)
			continue
		}
		dc.count, dc.sends = max(u.Count, 1), u.Sends
		at[k] = len(m.decided)
		m.decided = append(m.decided, dc)
	}
	return m, nil
}

// isRule reports whether text is that of one of p's rules (not of its
// default or its virtual network).
func isRule(p *netstack.Policy, text string) bool {
	if text == "" {
		return false
	}
	for _, r := range p.Rules() {
		if r.Text == text {
			return true
		}
	}
	return false
}

// memoResolve remembers what resolve answered: the file is read twice, its
// names are looked up once.
func memoResolve(resolve func(string) ([]netip.Addr, error)) func(string) ([]netip.Addr, error) {
	type answer struct {
		addrs []netip.Addr
		err   error
	}
	seen := map[string]answer{}
	return func(host string) ([]netip.Addr, error) {
		if a, ok := seen[host]; ok {
			return a.addrs, a.err
		}
		addrs, err := resolve(host)
		seen[host] = answer{addrs, err}
		return addrs, err
	}
}

// useText is the destination of u as PROGRAM used it, for a message.
func useText(u learn.Use) string {
	switch u.Kind {
	case learn.Inet:
		s := ""
		if u.Proto == "tcp" || u.Proto == "udp" {
			s = u.Proto + ":"
		}
		if u.Name != "" {
			return s + net.JoinHostPort(u.Name, strconv.Itoa(int(u.Addr.Port()))) + " (" + u.Addr.Addr().String() + ")"
		}
		return s + u.Addr.String()
	case learn.Unix:
		if u.Abstract {
			return strconv.Quote("unix:@" + u.Path)
		}
		return strconv.Quote("unix:" + u.Path)
	}
	return "a socket of family " + u.Family
}

// verdictText is what PROGRAM gets under decision d: "deny", "refuse",
// "redirect 10.0.0.9:80", ...
func verdictText(d netstack.Decision) string {
	if d.Action == netstack.Redirect {
		return "redirect " + d.Redirect.String()
	}
	return d.Action.String()
}

// localAddrs reports whether an address is one of the interfaces' of this
// network namespace, the one PROGRAM ran in: see learn.Options.Local.
func localAddrs() func(netip.Addr) bool {
	own := map[netip.Addr]bool{}
	if as, err := net.InterfaceAddrs(); err == nil {
		for _, a := range as {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok {
					own[ip.Unmap()] = true
				}
			}
		}
	}
	return func(a netip.Addr) bool { return own[a.Unmap().WithZone("")] }
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// lockDir takes an exclusive flock(2) on directory dir, waiting for it,
// and returns its release.
func lockDir(dir string) (func(), error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil // closing releases the lock
}

func writePolicy(stderr interface{ Write([]byte) (int, error) }, path string, data []byte, what string, argv []string) error {
	if path == "-" {
		_, err := os.Stdout.Write(data)
		return err
	}
	// Written whole or not at all: a crash must not leave half a policy.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".sandbox-learn-*")
	if err != nil {
		return &exitError{code: exitSandbox, err: fmt.Errorf("writing the policy: %w", err)}
	}
	mode := fs.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return &exitError{code: exitSandbox, err: fmt.Errorf("writing the policy to %s: %w", path, err)}
	}
	fmt.Fprintf(stderr, "sandbox: learn: wrote %s (%s); review it, then: sandbox run --policy %s -- %s\n",
		path, what, shell.Join([]string{path}), shell.Join(argv))
	return nil
}

// requestOf is the request a use stands for, to ask an existing policy.
func requestOf(u learn.Use) netstack.Request {
	switch u.Kind {
	case learn.Inet:
		r := netstack.Request{Family: netstack.FamilyInet, Type: netstack.TypeStream, Addr: u.Addr, Names: u.Name, Looked: u.Name != ""}
		if u.Addr.Addr().Is6() {
			r.Family = netstack.FamilyInet6
		}
		if u.Proto == "udp" {
			r.Type = netstack.TypeDgram
		}
		return r
	case learn.Unix:
		r := netstack.Request{Family: netstack.FamilyUnix, Type: netstack.TypeStream}
		if u.Abstract {
			r.Unix = netstack.UnixAddr{Abstract: true, Name: u.Path}
		} else {
			r.Unix = netstack.UnixAddr{Path: u.Path}
		}
		return r
	}
	return netstack.Request{Family: netstack.FamilyOther}
}

// ephemeralRange is net.ipv4.ip_local_port_range.
func ephemeralRange() [2]uint16 {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return [2]uint16{}
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return [2]uint16{}
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || lo <= 0 || hi > 65535 || lo > hi {
		return [2]uint16{}
	}
	return [2]uint16{uint16(lo), uint16(hi)}
}

// warnUnresolved says which names of the policy had no address at load:
// they match only what PROGRAM's own lookups return.
func warnUnresolved(log *logrus.Logger, p *netstack.Policy) {
	seen := map[string]bool{}
	for _, r := range p.Rules() {
		for _, d := range r.Dests {
			if d.Unresolved != "" && !seen[d.Host] {
				seen[d.Host] = true
				log.WithFields(logrus.Fields{"name": d.Host, "error": d.Unresolved, "rule": r.Text}).
					Warn("a rule's host name has no address now: it matches only the addresses PROGRAM's own lookups return")
			}
		}
	}
}
