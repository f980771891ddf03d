package main

import (
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

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
  - by address and port otherwise (a port the kernel picked from the
    ephemeral range is written as the whole range);
  - by absolute path for Unix sockets.
The summary table (--summary) follows PROGRAM's end.

--out FILE writes the policy there (- for stdout); without it, learn writes
` + defaultLearnOut + ` and refuses to overwrite one that exists.
--merge FILE adds only what FILE does not already allow, keeping FILE's
comments and order, writes FILE back (or to --out) and prints what it
added: run learn once per test of a suite, merging into one policy.

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
	o := learn.Options{Ephemeral: ephemeralRange(), Command: argv, Now: time.Now()}
	stderr := c.App.ErrWriter
	if code != 0 {
		fmt.Fprintf(stderr, "sandbox: learn: PROGRAM exited with status %d: the policy holds what it used until then\n", code)
	}
	fail := func(err error) error { return &exitError{code: exitSandbox, err: err} }
	if l.merge != "" {
		existing, err := netstack.ParsePolicy(l.merge, l.mergeData, resolve)
		if err != nil {
			return fail(fmt.Errorf("--merge: %w", err))
		}
		covered := func(u learn.Use) bool { return u.Self || existing.Decide(requestOf(u)).Action == netstack.Allow }
		out, added, err := learn.Merge(l.mergeData, l.merge, uses, covered, o)
		if err != nil {
			return fail(fmt.Errorf("--merge: %w", err))
		}
		dst := l.out
		if dst == "" {
			dst = l.merge
		}
		if len(added) == 0 {
			fmt.Fprintf(stderr, "sandbox: learn: nothing new: %s already allows every destination PROGRAM used\n", l.merge)
		}
		for _, r := range added {
			fmt.Fprintf(stderr, "sandbox: learn: added allow: %s\n", r.Dest)
		}
		if len(added) == 0 && dst == l.merge {
			return nil
		}
		return writePolicy(stderr, dst, out, plural(len(added), "rule")+" added", argv)
	}
	rules := learn.Rules(uses, o)
	return writePolicy(stderr, l.out, learn.Write(uses, o), plural(len(rules), "rule"), argv)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// shellWords quotes argv for a shell, where a word needs it.
func shellWords(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@%+,") == "" {
			out[i] = a
		} else {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
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
		path, what, shellWords([]string{path}), shellWords(argv))
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
