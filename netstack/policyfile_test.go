package netstack

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

func mustParse(t *testing.T, src string) *Policy {
	t.Helper()
	p, err := ParsePolicy("p.yaml", []byte(src), stubResolver)
	if err != nil {
		t.Fatalf("ParsePolicy: %v", err)
	}
	return p
}

func TestParsePolicyBrief(t *testing.T) {
	data, err := os.ReadFile("testdata/brief.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePolicy("brief.yaml", data, stubResolver)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Rules()) != 6 || p.Default().Self || p.Default().Verdict != verdictDeny || p.Network() == nil {
		t.Fatalf("parsed %d rules, default %+v, network %v", len(p.Rules()), p.Default(), p.Network())
	}
	tests := []struct {
		req  Request
		want Decision
	}{
		{inet(TypeStream, "127.0.0.1:5432"), Decision{Action: Allow, Rule: "brief.yaml:3: allow: tcp:127.0.0.1:5432"}},
		{inet(TypeDgram, "10.9.9.9:53"), Decision{Action: Deny, Reason: ReasonPerm, Rule: "brief.yaml:4: deny: 10.0.0.0/8"}},
		{inet(TypeStream, "192.0.2.7:443"), Decision{Action: Timeout, Timeout: 2 * time.Second, Rule: "brief.yaml:6: timeout: tcp:192.0.2.0/24:443"}},
		// The default route covers it, and it is no declared host: the default decides.
		{inet(TypeStream, "192.0.2.7:80"), Decision{Action: Deny, Reason: ReasonAccess}},
		{unixPath("/run/postgresql/.s.PGSQL.5432"), Decision{Action: Refuse, Rule: "brief.yaml:10: refuse: unix:/run/postgresql/*"}},
		{inet(TypeStream, "[fd00::3]:5432"), Decision{Action: Allow, Rule: "brief.yaml:11: allow: tcp:db.internal:5432, [::1]:80"}},
		// The family filter: db.internal's IPv4 address on an inet socket is not inet6.
		{inet(TypeStream, "127.0.0.2:5432"), Decision{Action: Deny, Reason: ReasonAccess}},
	}
	for _, tt := range tests {
		if got := p.Decide(tt.req); got != tt.want {
			t.Errorf("Decide(%s) = %+v, want %+v", tt.req.Dest(), got, tt.want)
		}
	}
}

func TestParsePolicyForms(t *testing.T) {
	p := mustParse(t, `
version: 1
default:
  verdict: timeout
  after: 5s
rules:
  - unreachable: 198.51.100.0/24
    reason: host
    after: 100ms
  - unreachable: 203.0.113.0/24
  - refuse: tcp:*:25
    after: 20ms
  - deny: udp:*:53
    type: dgram
  - redirect: tcp:*:80
    to: 127.0.0.1
  - allow: '*'
    family: unix
`)
	tests := []struct {
		req  Request
		want Decision
	}{
		{inet(TypeStream, "198.51.100.1:1"), Decision{Action: Unreachable, Reason: ReasonHost, Delay: 100 * time.Millisecond, Rule: "p.yaml:7: unreachable: 198.51.100.0/24"}},
		{inet(TypeStream, "203.0.113.1:1"), Decision{Action: Unreachable, Reason: ReasonNet, Rule: "p.yaml:10: unreachable: 203.0.113.0/24"}},
		{inet(TypeStream, "8.8.8.8:25"), Decision{Action: Refuse, Delay: 20 * time.Millisecond, Rule: "p.yaml:11: refuse: tcp:*:25"}},
		{inet(TypeDgram, "8.8.8.8:53"), Decision{Action: Deny, Reason: ReasonAccess, Rule: "p.yaml:13: deny: udp:*:53"}},
		{inet(TypeStream, "[2001:db8::1]:80"), Decision{Action: Redirect, Redirect: netip.MustParseAddrPort("127.0.0.1:80"), Rule: "p.yaml:15: redirect: tcp:*:80"}},
		{abstract("x"), Decision{Action: Allow, Rule: "p.yaml:17: allow: *"}},
		{inet(TypeStream, "8.8.8.8:443"), Decision{Action: Timeout, Timeout: 5 * time.Second}},
		{Request{Family: FamilyOther}, Decision{Action: Timeout, Timeout: 5 * time.Second}},
	}
	for _, tt := range tests {
		if got := p.Decide(tt.req); got != tt.want {
			t.Errorf("Decide(%s) = %+v, want %+v", tt.req.Dest(), got, tt.want)
		}
	}
}

func TestParsePolicyDefaults(t *testing.T) {
	tests := []struct {
		src  string
		want Default
	}{
		{"", DefaultSelf},
		{"# only a comment\n", DefaultSelf},
		{"---\n", DefaultSelf},
		{"default: self", DefaultSelf},
		{"default: {verdict: self}", DefaultSelf},
		{"default: allow", Default{Verdict: verdictAllow}},
		{"default: refuse", Default{Verdict: Verdict{Action: Refuse}}},
		{"default: deny", Default{Verdict: verdictDeny}},
		{"default: {verdict: deny, errno: EPERM}", Default{Verdict: Verdict{Action: Deny, Reason: ReasonPerm}}},
		{"default: unreachable", Default{Verdict: Verdict{Action: Unreachable, Reason: ReasonNet}}},
		{"default: timeout", Default{Verdict: Verdict{Action: Timeout, After: DefaultTimeout}}},
		{"rules: []", DefaultSelf},
	}
	for _, tt := range tests {
		p, err := ParsePolicy("p.yaml", []byte(tt.src), nil)
		if err != nil {
			t.Errorf("%q: %v", tt.src, err)
			continue
		}
		if p.Default() != tt.want {
			t.Errorf("%q: default %+v, want %+v", tt.src, p.Default(), tt.want)
		}
	}
}

func TestParsePolicyErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{"rules: [\n", "p.yaml:1:8: expected valid YAML: sequence end token ']' not found"},
		{"a: 1\n---\nb: 2\n", "p.yaml:2:1: expected a single YAML document"},
		{"- allow: '*'", "p.yaml:1:1: expected the policy (a mapping), got a list"},
		{"defualt: deny", `p.yaml:1:1: unknown key "defualt" in the policy: expected one of version, default, rules, network`},
		{"default: deny\ndefault: allow", `p.yaml:2:1: key "default" repeated (first at line 1)`},
		{"version: 2", `p.yaml:1:10: expected version 1, got "2"`},
		{"default: maybe", `p.yaml:1:10: expected the default: self, allow, deny, refuse, unreachable or timeout, got "maybe"`},
		{"default: redirect", `p.yaml:1:10: expected the default`},
		{"default: {errno: EPERM}", "p.yaml:1:10: expected verdict:"},
		{"default: {verdict: allow, errno: EPERM}", "p.yaml:1:27: errno does not apply to allow"},
		{"default: {verdict: self, after: 1s}", "p.yaml:1:10: self takes no options"},
		{"rules: allow", `p.yaml:1:8: expected a list of rules, got "allow"`},
		{"rules:\n  - allow", `p.yaml:2:5: expected a rule (a mapping), got "allow"`},
		{"rules:\n  - errno: EPERM", "p.yaml:2:5: expected a rule: one of allow, deny, refuse, unreachable, timeout, redirect"},
		{"rules:\n  - allow: '*'\n    deny: '*'", "p.yaml:3:5: a rule has one verdict, and this one already has allow"},
		{"rules:\n  - allow: '*'\n    erno: EPERM", `p.yaml:3:5: unknown key "erno" in a rule`},
		{"rules:\n  - allow:", "p.yaml:2:11: expected a destination, got nothing"},
		{"rules:\n  - allow: []", "p.yaml:2:12: expected a destination, got an empty list"},
		{"rules:\n  - allow: {a: b}", "p.yaml:2:12: expected a destination, got a mapping"},
		{"rules:\n  - allow: tcp:1.2.3.4:99999", `p.yaml:2:12: expected PORT or PORT-PORT (0-65535), got "99999"`},
		{"rules:\n  - allow: [1.2.3.4, 'tcp:']", `p.yaml:2:22: expected an address`},
		{"rules:\n  - allow: nosuch.example\n    dns: refused", "p.yaml:3:5: dns applies only to deny rules by host name"},
		{"rules:\n  - deny: 10.0.0.1\n    dns: refused", "p.yaml:3:5: dns applies only to deny rules by host name"},
		{"rules:\n  - deny: bad.example\n    dns: servfail", `p.yaml:3:10: expected dns: nxdomain or refused, got "servfail"`},
		{"rules:\n  - deny: '*'\n    errno: ENOENT", `p.yaml:3:12: expected EACCES or EPERM, got "ENOENT"`},
		{"rules:\n  - allow: '*'\n    errno: EPERM", "p.yaml:3:5: errno does not apply to allow"},
		{"rules:\n  - unreachable: '*'\n    reason: route", `p.yaml:3:13: expected net or host, got "route"`},
		{"rules:\n  - timeout: '*'\n    after: 2", `p.yaml:3:12: expected a duration such as 2s or 500ms, got "2"`},
		{"rules:\n  - timeout: '*'\n    after: -1s", `p.yaml:3:12: expected a duration`},
		{"rules:\n  - deny: '*'\n    after: 1s", "p.yaml:3:5: after does not apply to deny"},
		{"rules:\n  - redirect: tcp:1.2.3.4:80", "p.yaml:2:5: redirect needs to: IP:PORT"},
		{"rules:\n  - redirect: tcp:1.2.3.4:80\n    to: somewhere", `p.yaml:3:9: expected a redirect target IP:PORT`},
		{"rules:\n  - redirect: unix:/x\n    to: 127.0.0.1:1", "p.yaml:2:5: redirect applies only to IP destinations"},
		{"rules:\n  - redirect: tcp:*\n    to: '[::1]:1'", "p.yaml:2:5: tcp:* includes IPv4 destinations"},
		{"rules:\n  - allow: unix:/x\n    family: inet", "p.yaml:2:5: family inet never matches unix:/x"},
		{"rules:\n  - allow: tcp:*\n    type: udp", "p.yaml:2:5: type dgram never matches tcp:*"},
		{"rules:\n  - allow: '*'\n    family: ipx", `p.yaml:3:13: expected family inet, inet6, unix or other, got "ipx"`},
		{"rules:\n  - allow: '*'\n    type: raw", `p.yaml:3:11: expected type stream, dgram, seqpacket, other, tcp or udp, got "raw"`},
		{"network: []", "p.yaml:1:10: expected the network (a mapping), got a list"},
		{"network:\n  interfaces:\n    - name: eth0", "p.yaml:3:7: expected address: ADDR/BITS of the interface"},
		{"network:\n  interfaces:\n    - address: 10.0.0.1/24", "p.yaml:3:7: expected name: of the interface"},
		{"network:\n  interfaces:\n    - name: eth0\n      address: 10.0.0.1", `p.yaml:4:16: expected ADDR/BITS, such as 10.50.0.2/24, got "10.0.0.1"`},
		{"network:\n  interfaces:\n    - {name: a, address: 10.0.0.1/24}\n    - {name: a, address: 10.0.1.1/24}", `p.yaml:4:7: interface "a" declared twice`},
		{"network:\n  interfaces:\n    - {name: lo, address: 127.0.0.1/8}", "p.yaml:3:7: 127.0.0.1/8: expected a unicast, non-loopback interface address"},
		{"network:\n  routes:\n    - via: 10.0.0.1", "p.yaml:3:7: expected to: default or ADDR/BITS"},
		{"network:\n  routes:\n    - to: 10.0.0.1/8", "p.yaml:3:11: expected default or ADDR/BITS: 10.0.0.1/8 has host bits set"},
		{"network:\n  routes:\n    - to: default\n      via: 10.0.0.1", "p.yaml:3:7: gateway 10.0.0.1: expected an address on an interface's subnet"},
		{"network:\n  routes:\n    - to: default\n      via: gw", `p.yaml:4:12: expected a gateway IP address, got "gw"`},
		{"network:\n  hosts:\n    - address: 10.0.0.5", "p.yaml:3:7: host 10.0.0.5 is reachable by no route"},
		{"network:\n  hosts:\n    - name: x", "p.yaml:3:7: expected address: of the host"},
		{"network:\n  interfaces: [{name: e, address: 10.0.0.1/24}]\n  hosts:\n    - address: 10.0.0.1", "p.yaml:4:7: host 10.0.0.1 is an interface's own address"},
		{"network:\n  interfaces: [{name: e, address: 10.0.0.1/24}]\n  hosts:\n    - address: 10.0.0.255", "p.yaml:4:7: host 10.0.0.255 is a broadcast address"},
		{"network:\n  interfaces: [{name: e, address: 10.0.0.1/24}]\n  hosts:\n    - address: 10.0.0.5\n    - address: 10.0.0.5", "p.yaml:5:7: host 10.0.0.5 declared twice (first at p.yaml:4:7)"},
		{"network:\n  interfaces: [{name: e, address: 10.0.0.1/24}]\n  hosts:\n    - address: 10.0.0.5\n      services:\n        - verdict: allow", "p.yaml:6:11: expected port: PORT or PORT-PORT"},
		{"network:\n  interfaces: [{name: e, address: 10.0.0.1/24}]\n  hosts:\n    - address: 10.0.0.5\n      services:\n        - port: 80", "p.yaml:6:11: expected verdict:"},
		{"network:\n  interfaces: [{name: e, address: 10.0.0.1/24}]\n  hosts:\n    - address: 10.0.0.5\n      services:\n        - {port: 80, proto: sctp, verdict: allow}", `p.yaml:6:29: expected proto tcp or udp, got "sctp"`},
		{"network:\n  interfaces: [{name: e, address: 10.0.0.1/24}]\n  hosts:\n    - address: 10.0.0.5\n      services:\n        - {port: 80, verdict: redirect}", "p.yaml:6:31: redirect needs to: IP:PORT"},
		{"network:\n  interfaces: [{name: e, address: 10.0.0.1/24}]\n  hosts:\n    - address: 10.0.0.5\n      services:\n        - {port: 80, verdict: redirect, to: '[::1]:80'}", "p.yaml:6:11: IPv4 sockets cannot redirect to IPv6 ::1"},
	}
	for _, tt := range tests {
		_, err := ParsePolicy("p.yaml", []byte(tt.src), stubResolver)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParsePolicy(%q):\n got %v\nwant %s", tt.src, err, tt.want)
		}
	}
}

// Every error line starts with FILE:LINE:COL, and independent mistakes are
// all reported.
func TestParsePolicyErrorsAllPositioned(t *testing.T) {
	src := "rules:\n  - allow: 'tcp:'\n  - deny: '*'\n    errno: X\n  - bogus: 1\n"
	_, err := ParsePolicy("p.yaml", []byte(src), nil)
	if err == nil {
		t.Fatal("no error")
	}
	if n := strings.Count(err.Error(), "\np.yaml:") + 1; n != 3 {
		t.Fatalf("want 3 errors, got %d: %q", n, err)
	}
	checkErrorLines(t, "p.yaml", []byte(src), err.Error())
}

// String prints YAML that parses back to the same policy.
func TestNormalizeRoundTrip(t *testing.T) {
	srcs := []string{
		"",
		"default: allow",
		"default: {verdict: timeout, after: 1m}",
		"default: {verdict: refuse, after: 1s}",
		"default: {verdict: unreachable, reason: host}",
		`rules:
  - allow: [tcp:db.internal:5432, "unix:@/tmp/a b", "unix:/run/[ab]*", "*:53", "*:0-65535"]
  - deny: "[fd00::/8]:53"
    errno: EPERM
    family: inet6
  - redirect: tcp:*:80-90
    to: 127.0.0.1
  - redirect: "[::1]:8080"
    to: "[::1]:9090"
  - timeout: udp:*
    type: dgram
  - unreachable: 10.0.0.0/8
    reason: host
    after: 3s
  - timeout: unix:*
  - allow: "*"
    family: other
`,
	}
	data, err := os.ReadFile("testdata/brief.yaml")
	if err != nil {
		t.Fatal(err)
	}
	srcs = append(srcs, string(data))
	for _, src := range srcs {
		p := mustParse(t, src)
		text := p.String()
		q, err := ParsePolicy("normalized.yaml", []byte(text), nil)
		if err != nil {
			t.Errorf("normalized form of %q does not parse: %v\n%s", src, err, text)
			continue
		}
		if a, b := p.format(false), q.format(false); a != b {
			t.Errorf("round trip changed the policy:\n%s\nvs\n%s", a, b)
		}
	}
}

// Broken files: each error points at the line and column where the problem
// is, quotes that line, and puts a caret under the column.
func TestPolicyErrorPositions(t *testing.T) {
	tests := []struct {
		name, src string
		line, col int
		msg       string
	}{
		// The outer { opens a mapping; its content cannot start with {.
		{"flow mapping never closed", "version: 1\nrules:\n  - {{{ broken\n", 3, 6, "expected valid YAML: could not find flow map content"},
		{"the brief's example", "rules:\n  - {{{ broken\n", 2, 6, "expected valid YAML"},
		{"bad indentation", "rules:\n  - allow: x\n   bad: indent\n", 3, 4, "expected valid YAML"},
		{"unterminated string", "rules:\n  - allow: \"unterminated\n", 2, 12, "expected valid YAML"},
		{"tab indentation", "default: deny\n\trules: []\n", 2, 1, "expected valid YAML"},
		{"unclosed list", "rules: [a, b\n", 1, 8, "expected valid YAML"},
		{"unknown alias", "default: *nope\n", 1, 10, "expected valid YAML"},
		{"unknown key", "rules:\n  - allow: '*'\n    erno: EPERM\n", 3, 5, `unknown key "erno"`},
		{"bad port", "rules:\n  - allow: tcp:1.2.3.4:99999\n", 2, 12, "expected PORT"},
		{"second of a list", "rules:\n  - allow: [1.2.3.4, 'tcp:']\n", 2, 22, "expected an address"},
		{"repeated key", "default: deny\ndefault: allow\n", 2, 1, `key "default" repeated (first at line 1)`},
		{"ambiguous IPv6", "rules:\n  - allow: '::1:8080'\n", 2, 12, "write [::1]:8080"},
		{"unix unreachable", "rules:\n  - unreachable: unix:/run/x\n", 2, 18, "never fails with ENETUNREACH"},
		{"unknown alias, second use", "default: deny\nrules:\n  - allow: [1.2.3.4, *nope]\n", 3, 22, "unknown anchor 'nope'"},
		{"after a multi-byte character", "rules:\n  - allow: [\"unix:/é\", 'tcp:']\n", 2, 24, "expected an address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePolicy("p.yaml", []byte(tt.src), stubResolver)
			if err == nil {
				t.Fatal("no error")
			}
			want := fmt.Sprintf("p.yaml:%d:%d: ", tt.line, tt.col)
			first := strings.SplitN(err.Error(), "\n", 4)
			if !strings.HasPrefix(first[0], want) || !strings.Contains(first[0], tt.msg) {
				t.Fatalf("got %q, want %s...%s...", err, want, tt.msg)
			}
			src := strings.Split(tt.src, "\n")[tt.line-1]
			if len(first) < 3 || first[1] != fmt.Sprintf("%5d | %s", tt.line, src) {
				t.Fatalf("the error does not quote line %d %q:\n%s", tt.line, src, err)
			}
			caret := "      | " + strings.Repeat(" ", tt.col-1) + "^"
			if strings.HasPrefix(src, "\t") {
				caret = "      | ^"
			}
			if first[2] != caret {
				t.Errorf("caret line %q, want %q\n%s", first[2], caret, err)
			}
		})
	}
}
