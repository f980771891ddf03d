package netstack

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParseFlag(t *testing.T) {
	tests := []struct {
		name, value string
		verdict     Verdict
		dest        string
	}{
		{"allow", "tcp:127.0.0.1:5432", verdictAllow, "tcp:127.0.0.1:5432"},
		{"--allow", "unix:/run/a=b.sock", verdictAllow, "unix:/run/a=b.sock"}, // no parameter: '=' is part of DEST
		{"deny", "10.0.0.0/8", verdictDeny, "10.0.0.0/8"},
		{"deny", "10.0.0.0/8=EPERM", Verdict{Action: Deny, Reason: ReasonPerm}, "10.0.0.0/8"},
		{"deny", "10.0.0.0/8=EACCES", verdictDeny, "10.0.0.0/8"},
		{"refuse", "tcp:*:25", Verdict{Action: Refuse}, "tcp:*:25"},
		{"unreachable", "[fd00::/8]", Verdict{Action: Unreachable, Reason: ReasonNet}, "[fd00::/8]"},
		{"unreachable", "[fd00::/8]=host", Verdict{Action: Unreachable, Reason: ReasonHost}, "[fd00::/8]"},
		{"timeout", "tcp:192.0.2.0/24:443", Verdict{Action: Timeout, After: DefaultTimeout}, "tcp:192.0.2.0/24:443"},
		{"timeout", "tcp:192.0.2.0/24:443=1.5s", Verdict{Action: Timeout, After: 1500 * time.Millisecond}, "tcp:192.0.2.0/24:443"},
		{"redirect", "tcp:10.1.2.3:443=127.0.0.1:8443", Verdict{Action: Redirect, To: netip.MustParseAddrPort("127.0.0.1:8443")}, "tcp:10.1.2.3:443"},
		{"redirect", "tcp:[::1]:443=[::1]:8443", Verdict{Action: Redirect, To: netip.MustParseAddrPort("[::1]:8443")}, "tcp:[::1]:443"},
		{"redirect", "tcp:*:80=[::ffff:127.0.0.1]", Verdict{Action: Redirect, To: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0)}, "tcp:*:80"},
		{"allow-all", "", verdictAllow, "*"},
	}
	for _, tt := range tests {
		rl, err := ParseFlag(tt.name, tt.value, stubResolver)
		if err != nil {
			t.Errorf("ParseFlag(%s, %s): %v", tt.name, tt.value, err)
			continue
		}
		if rl.Verdict != tt.verdict || len(rl.Dests) != 1 || rl.Dests[0].String() != tt.dest || rl.Origin != "flag" {
			t.Errorf("ParseFlag(%s, %s) = %+v, want verdict %+v dest %s", tt.name, tt.value, rl, tt.verdict, tt.dest)
		}
		if want := "--" + strings.TrimLeft(tt.name, "-") + strings.TrimRight(" "+tt.value, " "); rl.Text != want {
			t.Errorf("Text = %q, want %q", rl.Text, want)
		}
	}
}

func TestParseFlagErrors(t *testing.T) {
	tests := []struct{ name, value, want string }{
		{"permit", "*", "--permit *: unknown rule flag: expected --allow"},
		{"allow", "", "--allow: destination \"\": empty"},
		{"deny", "*=ENOENT", `--deny *=ENOENT: expected EACCES or EPERM, got "ENOENT"`},
		{"unreachable", "*=far", `expected net or host, got "far"`},
		{"timeout", "*=forever", `expected a duration such as 2s or 500ms, got "forever"`},
		{"redirect", "tcp:*:80", "--redirect tcp:*:80: expected DEST=IP:PORT"},
		{"redirect", "tcp:*:80=0.0.0.0:80", "expected a redirect target"},
		{"redirect", "unix:/x=127.0.0.1:1", "redirect applies only to IP destinations"},
		{"redirect", "*=127.0.0.1:1", "redirect applies only to IP destinations"},
		{"redirect", "10.0.0.0/8=[::1]:1", "IPv4 sockets cannot redirect to IPv6"},
		{"allow-all", "x", "--allow-all x: takes no value"},
		{"allow", "db.internal/8", "takes no /BITS"},
	}
	for _, tt := range tests {
		resolve := stubResolver
		if tt.value == "db.internal" {
			resolve = nil
		}
		_, err := ParseFlag(tt.name, tt.value, resolve)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseFlag(%s, %s) error = %v, want %q", tt.name, tt.value, err, tt.want)
		}
	}
}

func flags(t *testing.T, fs ...string) []Rule {
	t.Helper()
	var out []Rule
	for i := 0; i+1 < len(fs); i += 2 {
		rl, err := ParseFlag(fs[i], fs[i+1], stubResolver)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rl)
	}
	return out
}

// First match wins, flags before file rules, in the order given.
func TestFirstMatchWinsFlagsFirst(t *testing.T) {
	file := mustParse(t, `
default: refuse
rules:
  - deny: 10.0.0.0/8
  - allow: 10.1.0.0/16
`)
	p, err := file.WithFlags(flags(t, "timeout", "10.1.2.0/24=1s", "allow", "10.1.2.3", "allow-all", ""))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr string
		want Action
		rule string
	}{
		{"10.1.2.3:80", Timeout, "--timeout 10.1.2.0/24=1s"}, // the earlier flag wins over the later, more specific one
		{"10.1.3.3:80", Allow, "--allow-all"},                // flags before the file's deny
		{"8.8.8.8:53", Allow, "--allow-all"},
	}
	for _, tt := range tests {
		d := p.Decide(inet(TypeStream, tt.addr))
		if d.Action != tt.want || d.Rule != tt.rule {
			t.Errorf("%s: %s by %q, want %s by %q", tt.addr, d.Action, d.Rule, tt.want, tt.rule)
		}
	}
	// Without the flags, the file's order decides: deny 10/8 shadows allow 10.1/16.
	if d := file.Decide(inet(TypeStream, "10.1.2.3:80")); d.Action != Deny {
		t.Errorf("file alone: %+v", d)
	}
	if d := file.Decide(inet(TypeStream, "8.8.8.8:80")); d.Action != Refuse || d.Rule != "" || d.Suggest != "" {
		t.Errorf("file default: %+v", d)
	}
	if !strings.Contains(p.String(), "and 3 flag(s)") || !strings.Contains(p.String(), "# --allow 10.1.2.3") {
		t.Errorf("normalized form does not show the flags:\n%s", p)
	}
}

func TestVerdictDecisions(t *testing.T) {
	r := inet(TypeStream, "[::ffff:10.0.0.1]:443")
	tests := []struct {
		v    Verdict
		want Decision
	}{
		{verdictAllow, Decision{Action: Allow, Rule: "x"}},
		{Verdict{Action: Deny, Reason: ReasonPerm}, Decision{Action: Deny, Reason: ReasonPerm, Rule: "x"}},
		{Verdict{Action: Refuse, After: time.Second}, Decision{Action: Refuse, Delay: time.Second, Rule: "x"}},
		{Verdict{Action: Unreachable, Reason: ReasonHost}, Decision{Action: Unreachable, Reason: ReasonHost, Rule: "x"}},
		{Verdict{Action: Timeout, After: DefaultTimeout}, Decision{Action: Timeout, Timeout: DefaultTimeout, Rule: "x"}},
		{Verdict{Action: Redirect, To: netip.MustParseAddrPort("127.0.0.1:8443")}, Decision{Action: Redirect, Redirect: netip.MustParseAddrPort("127.0.0.1:8443"), Rule: "x"}},
		// Port 0 keeps the requested port.
		{Verdict{Action: Redirect, To: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0)}, Decision{Action: Redirect, Redirect: netip.MustParseAddrPort("127.0.0.1:443"), Rule: "x"}},
	}
	for _, tt := range tests {
		if got := tt.v.decision(r, "x"); got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.v, got, tt.want)
		}
	}
	if got := DefaultTimeout; got != 127*time.Second {
		t.Errorf("DefaultTimeout = %s", got)
	}
}

func TestDecideUnspecAndOddRequests(t *testing.T) {
	p := mustParse(t, "default: deny\nrules:\n  - deny: '*'\n    errno: EPERM\n")
	if d := p.Decide(Request{Family: FamilyUnspec}); d.Action != Allow {
		t.Errorf("AF_UNSPEC is a disconnect and must pass: %+v", d)
	}
	for _, r := range []Request{{Family: FamilyOther}, {Family: FamilyInet}, {Family: FamilyUnix}} {
		if d := p.Decide(r); d.Action != Deny || d.Reason != ReasonPerm {
			t.Errorf("%+v: %+v, want the * rule", r, d)
		}
	}
}

func TestNewPolicyValidates(t *testing.T) {
	if _, err := NewPolicy("x", Default{Verdict: Verdict{Action: Redirect}}, nil, nil); err == nil {
		t.Error("redirect default accepted")
	}
	if _, err := NewPolicy("x", DefaultSelf, []Rule{{Verdict: verdictAllow}}, nil); err == nil || !strings.Contains(err.Error(), "x: rule 1: rule has no destination") {
		t.Errorf("rule without destination: %v", err)
	}
}

func TestSelfPolicy(t *testing.T) {
	p := SelfPolicy()
	r := inet(TypeStream, "127.0.0.1:8080")
	if d := p.Decide(r); d.Action != Deny || d.Reason != ReasonAccess || d.Suggest != "--allow tcp:127.0.0.1:8080" {
		t.Errorf("no registry: %+v", d)
	}
	e := NewEndpoints()
	p.UseEndpoints(e)
	e.Add(Endpoint{Family: FamilyInet, Type: TypeStream, Addr: netip.MustParseAddrPort("0.0.0.0:8080")})
	if d := p.Decide(r); d.Action != Allow || d.Rule != "" || d.Suggest != "" {
		t.Errorf("own listener: %+v", d)
	}
	// Flags on top keep the registry.
	q, err := p.WithFlags(flags(t, "deny", "tcp:127.0.0.1:8080=EPERM"))
	if err != nil {
		t.Fatal(err)
	}
	if d := q.Decide(r); d.Action != Deny || d.Reason != ReasonPerm {
		t.Errorf("flag over self: %+v", d)
	}
	if d := q.Decide(inet(TypeStream, "127.0.0.2:8080")); d.Action != Allow {
		t.Errorf("self after flags: %+v", d)
	}
	if d := p.Decide(Request{Family: FamilyUnix, Type: TypeDgram}); d.Action != Allow {
		t.Errorf("unnamed unix: %+v", d)
	}
	if d := p.Decide(Request{Family: FamilyOther}); d.Action != Deny || d.Suggest != "--allow-all" {
		t.Errorf("other family: %+v", d)
	}
}
