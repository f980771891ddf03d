package main

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sandbox/netstack"
	"sandbox/netstack/learn"
)

// noResolve is the policies' resolver here: nothing is looked up.
func noResolve(string) ([]netip.Addr, error) { return nil, errors.New("no lookups in this test") }

func parse(t *testing.T, path string, data []byte) *netstack.Policy {
	t.Helper()
	p, err := netstack.ParsePolicy(path, data, noResolve)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	return p
}

func inetUse(proto, addr, name string, self bool) learn.Use {
	return learn.Use{Kind: learn.Inet, Proto: proto, Addr: netip.MustParseAddrPort(addr), Name: name, Self: self, Count: 1, Comm: "app", PID: 7}
}

// allowedUnder reports whether a run under p allows u, as the sentry
// decides it: a Self use is allowed by default: self too.
func allowedUnder(p *netstack.Policy, u learn.Use) bool {
	d := p.Decide(requestOf(u))
	return d.Action == netstack.Allow || u.Self && d.Rule == "" && p.Default().Self
}

var learnOpts = learn.Options{Now: time.Date(2026, 12, 1, 21, 50, 0, 0, time.UTC), Command: []string{"app"}}

// TestMergeShadowedByARule: a destination a rule of the file decides
// otherwise (here deny) gets no rule, which could never match after it,
// and is reported with that rule's FILE:LINE; merging again adds nothing,
// where the old merge appended the same dead rule each time.
func TestMergeShadowedByARule(t *testing.T) {
	data := []byte("version: 1\ndefault: deny\nrules:\n  - deny: tcp:10.231.0.2:8081\n")
	uses := []learn.Use{inetUse("tcp", "10.231.0.2:8081", "", false), inetUse("tcp", "10.231.0.2:8081", "", false)}
	for round := range 2 {
		m, err := mergeUses("p.yaml", "p.yaml", data, noResolve, uses, learnOpts)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.added) != 0 || !bytes.Equal(m.out, data) {
			t.Fatalf("round %d: added %+v:\n%s", round, m.added, m.out)
		}
		if len(m.decided) != 1 {
			t.Fatalf("round %d: decided %+v, want the one destination", round, m.decided)
		}
		msg := m.decided[0].message("p.yaml")
		for _, want := range []string{"not added: tcp:10.231.0.2:8081 (2 connects)", "p.yaml:4: deny: tcp:10.231.0.2:8081 decides it first", "PROGRAM gets deny"} {
			if !strings.Contains(msg, want) {
				t.Errorf("round %d: %q lacks %q", round, msg, want)
			}
		}
		data = m.out
	}
}

// TestMergeMakesWhatWasLearnedAllowed: after a merge, every use PROGRAM
// made is either allowed by the merged file when run, or reported, with
// the FILE:LINE of what decides it; and a second merge changes nothing.
func TestMergeMakesWhatWasLearnedAllowed(t *testing.T) {
	uses := []learn.Use{
		inetUse("tcp", "10.231.0.2:8081", "", false),
		inetUse("tcp", "10.0.0.5:443", "api.test", false),
		inetUse("tcp", "10.9.9.9:443", "", false),
		inetUse("tcp", "10.1.2.3:443", "", false),
		inetUse("udp", "10.231.0.2:53", "", false),
		inetUse("tcp", "127.0.0.1:40000", "", false),
		inetUse("tcp", "127.0.0.1:40001", "", false), // the same widened rule; one of its ports is refused
		inetUse("tcp", "127.0.0.1:41000", "", true),  // the tree's own listener
		inetUse("tcp", "10.50.0.10:80", "", false),   // behind a virtual network's host
		{Kind: learn.Unix, Path: "/run/app.sock", Count: 1},
		{Kind: learn.Unix, Path: "app", Abstract: true, Count: 1, Sends: true},
		{Kind: learn.Other, Family: "netlink", Count: 1},
	}
	files := map[string]struct {
		text    string
		decided int // destinations reported
	}{
		"deny one": {"version: 1\ndefault: deny\nrules:\n  - deny: tcp:10.231.0.2:8081\n", 1},
		"deny a net first": {"default: deny\nrules:\n  - allow: tcp:10.9.9.9:443\n  - deny: 10.0.0.0/8\n" +
			"  - refuse: tcp:127.0.0.1:40001\n", 6},
		"redirect": {"default: deny\nrules:\n  - redirect: tcp:10.1.2.3:443\n    to: 127.0.0.1:8443\n", 1},
		"by name":  {"default: deny\nrules:\n  - deny: tcp:api.test:443\n", 1},
		// The own listener's port is in the range learned for the other
		// two: its rule allows the listener too.
		"self denied":  {"version: 1\ndefault: deny\nrules:\n  - deny: 127.0.0.0/8\n", 3},
		"self default": {"version: 1\n# strict\ndefault: refuse\nrules:\n", 0},
		"no default":   {"rules:\n  - allow: unix:/run/*\n", 0},
		"allow all":    {"default: allow\n", 0},
		// A virtual network comes after every rule: the rules added
		// decide what it would have.
		"network": {"default: deny\nrules: []\nnetwork:\n  interfaces:\n    - name: eth0\n      address: 10.50.0.2/24\n" +
			"  hosts:\n    - address: 10.50.0.10\n      services:\n        - port: 80\n          verdict: refuse\n", 0},
	}
	for name, f := range files {
		t.Run(name, func(t *testing.T) {
			data := []byte(f.text)
			m, err := mergeUses("p.yaml", "p.yaml", data, noResolve, uses, learnOpts)
			if err != nil {
				t.Fatal(err)
			}
			merged := parse(t, "p.yaml", m.out)
			var msgs []string
			for _, d := range m.decided {
				msgs = append(msgs, d.message("p.yaml"))
			}
			report := strings.Join(msgs, "\n")
			for _, u := range uses {
				if allowedUnder(merged, u) {
					continue
				}
				d := merged.Decide(requestOf(u))
				want := useText(u)
				if u.Self && d.Rule == "" {
					want = "the tree's own sockets"
				}
				if !strings.Contains(report, want) {
					t.Errorf("%s gets %v under the merged file (%s), and learn did not say so:\n%s\n%s", useText(u), d.Action, d.Rule, report, m.out)
				}
				if d.Rule != "" && !strings.Contains(report, d.Rule) || !strings.Contains(report, "p.yaml:") {
					t.Errorf("the report on %s does not name %q:\n%s", useText(u), d.Rule, report)
				}
			}
			if len(m.decided) != f.decided {
				t.Errorf("%d destinations reported, want %d:\n%s", len(m.decided), f.decided, report)
			}
			for _, d := range m.decided {
				if !strings.Contains(d.by, "p.yaml:") {
					t.Errorf("%q names no FILE:LINE", d.message("p.yaml"))
				}
			}
			again, err := mergeUses("p.yaml", "p.yaml", m.out, noResolve, uses, learnOpts)
			if err != nil || len(again.added) != 0 || !bytes.Equal(again.out, m.out) {
				t.Errorf("a second merge added %+v (%v):\n%s", again.added, err, again.out)
			}
		})
	}
}

// TestMergeSelfUnderDefaultDeny: the tree's own sockets under a file
// whose default is deny: learn never changes a default, so it says so,
// with the default's line.
func TestMergeSelfUnderDefaultDeny(t *testing.T) {
	data := []byte("version: 1\n# reviewed\ndefault: deny\nrules:\n  - allow: tcp:10.0.0.1:80\n")
	uses := []learn.Use{inetUse("tcp", "127.0.0.1:41000", "", true), inetUse("tcp", "127.0.0.1:41001", "", true)}
	m, err := mergeUses("p.yaml", "p.yaml", data, noResolve, uses, learnOpts)
	if err != nil || len(m.added) != 0 || len(m.decided) != 1 {
		t.Fatalf("%+v, %v", m, err)
	}
	msg := m.decided[0].message("p.yaml")
	if !strings.Contains(msg, "the tree's own sockets (2 connects") || !strings.Contains(msg, "p.yaml:3: default: deny") || !strings.Contains(msg, "write default: self") {
		t.Errorf("%q", msg)
	}
	// Under default: self, nothing to say.
	data = []byte("default: self\nrules: []\n")
	if m, err := mergeUses("p.yaml", "p.yaml", data, noResolve, uses, learnOpts); err != nil || len(m.decided) != 0 || len(m.added) != 0 {
		t.Errorf("under default: self: %+v, %v", m, err)
	}
}

// TestLearnChecksMergeableFirst: a --merge file that is a valid policy but
// one learn cannot add to is refused before PROGRAM runs (exit 125, the
// merge's own message), not after it, with everything learned lost.
func TestLearnChecksMergeableFirst(t *testing.T) {
	dir := t.TempDir()
	flow := filepath.Join(dir, "flow.yaml")
	os.WriteFile(flow, []byte("version: 1\ndefault: deny\nrules: [{allow: tcp:10.0.0.1:80}]\n"), 0o644)
	// A PROGRAM that does not exist: should the check miss, the run
	// fails with another status and message.
	var stdout, stderr bytes.Buffer
	code := runMain([]string{"sandbox", "learn", "--merge", flow, "--", filepath.Join(dir, "no-such-program")}, &stdout, &stderr)
	want := "sandbox: --merge: " + flow + `:3:8: rules: is a flow list [ ... ]: write it as a block list, one "- allow: DEST" per line, so that sandbox learn can add rules to it` + "\n"
	if code != exitSandbox || stderr.String() != want {
		t.Errorf("exit %d, stderr %q; want 125 and %q", code, stderr.String(), want)
	}
}
