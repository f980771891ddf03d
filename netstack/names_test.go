package netstack

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestNamesFollowTheQuestionsChain(t *testing.T) {
	n := NewNames(10 * time.Second)
	got := n.Observe(t0, "WWW.Web.Test.", []RR{
		{Name: "www.web.test.", TTL: 300, Target: "edge.cdn.test."},
		{Name: "edge.cdn.test.", TTL: 60, Target: "e1.cdn.test."},
		{Name: "e1.cdn.test.", TTL: 600, Addr: addr("10.0.0.7")},
		{Name: "www.web.test.", TTL: 600, Addr: addr("::ffff:10.0.0.8")},
		// Not on the question's chain: an answer must not name what it
		// was not asked about.
		{Name: "bank.test.", TTL: 600, Addr: addr("10.0.0.9")},
		{Name: "other.test.", TTL: 600, Target: "e1.cdn.test."},
	})
	if len(got) != 2 {
		t.Errorf("named %v, want exactly 10.0.0.7 and 10.0.0.8", got)
	}
	if s, _ := n.Lookup(addr("10.0.0.7"), t0); s != "www.web.test edge.cdn.test e1.cdn.test" {
		t.Errorf("10.0.0.7 is %q", s)
	}
	if s, _ := n.Lookup(addr("::ffff:10.0.0.8"), t0); s != "www.web.test" {
		t.Errorf("10.0.0.8 (v4-mapped) is %q", s)
	}
	if s, _ := n.Lookup(addr("10.0.0.9"), t0); s != "" {
		t.Errorf("an address off the chain was named %q", s)
	}
	// 10.0.0.7 is only as fresh as the chain's shortest TTL (60 s), plus
	// the grace.
	if s, _ := n.Lookup(addr("10.0.0.7"), t0.Add(69*time.Second)); s == "" {
		t.Errorf("expired before TTL+grace")
	}
	if s, _ := n.Lookup(addr("10.0.0.7"), t0.Add(71*time.Second)); s != "" {
		t.Errorf("still %q after TTL+grace", s)
	}
	if s, _ := n.Lookup(addr("10.0.0.8"), t0.Add(71*time.Second)); s != "www.web.test" {
		t.Errorf("10.0.0.8 (TTL 600) is %q", s)
	}
}

func TestNamesNewestFirstAndHosts(t *testing.T) {
	n := NewNames(0)
	if !n.Empty() {
		t.Fatal("a new table is not empty")
	}
	n.SetHosts(ParseHosts("# comment\n10.0.0.5 Files.Test alias  # trailing\nbad line\n::1 localhost6\n"))
	n.Observe(t0, "a.test", []RR{{Name: "a.test", TTL: 10, Addr: addr("10.0.0.5")}})
	n.Observe(t0.Add(time.Second), "b.test", []RR{{Name: "b.test", TTL: 100, Addr: addr("10.0.0.5")}})
	if s, _ := n.Lookup(addr("10.0.0.5"), t0.Add(2*time.Second)); s != "b.test a.test files.test alias" {
		t.Errorf("got %q", s)
	}
	// a.test expires; the hosts file's names never do.
	if s, _ := n.Lookup(addr("10.0.0.5"), t0.Add(20*time.Second)); s != "b.test files.test alias" {
		t.Errorf("after a.test's TTL: %q", s)
	}
	if s, _ := n.Lookup(addr("::1"), t0); s != "localhost6" {
		t.Errorf("::1 is %q", s)
	}
	// A repeated answer refreshes its name instead of repeating it.
	n.Observe(t0.Add(3*time.Second), "a.test", []RR{{Name: "a.test", TTL: 100, Addr: addr("10.0.0.5")}})
	if s, _ := n.Lookup(addr("10.0.0.5"), t0.Add(20*time.Second)); s != "a.test b.test files.test alias" {
		t.Errorf("after a fresh a.test: %q", s)
	}
}

func TestNamesAreBounded(t *testing.T) {
	n := NewNames(0)
	n.max = 4
	for i := range 4 {
		n.Observe(t0, "x.test", []RR{{Name: "x.test", TTL: 5, Addr: netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})}})
	}
	n.Observe(t0, "y.test", []RR{{Name: "y.test", TTL: 5, Addr: addr("10.0.1.1")}})
	if s, _ := n.Lookup(addr("10.0.1.1"), t0); s != "" {
		t.Errorf("a full table took a new address: %q", s)
	}
	// Once the old entries expired they are swept to make room.
	n.Observe(t0.Add(time.Minute), "y.test", []RR{{Name: "y.test", TTL: 5, Addr: addr("10.0.1.1")}})
	if s, _ := n.Lookup(addr("10.0.1.1"), t0.Add(time.Minute)); s != "y.test" {
		t.Errorf("after the sweep: %q", s)
	}
}

func TestMatchName(t *testing.T) {
	for _, tt := range []struct {
		pattern, name string
		want          bool
	}{
		{"api.example.com", "api.example.com", true},
		{"api.example.com", "x.api.example.com", false},
		{"*.example.com", "api.example.com", true},
		{"*.example.com", "a.b.example.com", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", "badexample.com", false},
		{"*.example.com", ".example.com", false},
	} {
		if got := MatchName(tt.pattern, tt.name); got != tt.want {
			t.Errorf("MatchName(%q, %q) = %v", tt.pattern, tt.name, got)
		}
	}
}

func namedPolicy(t *testing.T, text string) *Policy {
	t.Helper()
	p, err := ParsePolicy("p.yaml", []byte(text), stubResolver)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRulesByNameFollowTheProgramsLookups(t *testing.T) {
	p := namedPolicy(t, `default: deny
rules:
  - deny: tcp:bad.test:443
  - allow: tcp:good.test:443
  - allow: "udp:*.cdn.test:443"
  - allow: tcp:db.internal:5432
  - deny: 10.9.0.0/16
  - allow: tcp:late.test:80
`)
	req := func(typ SockType, ap, names string) Request {
		r := inet(typ, ap)
		r.Names, r.Looked = names, names != ""
		return r
	}
	hostsOnly := req(TypeStream, "10.1.2.3:5432", "files.test")
	hostsOnly.Looked = false
	for _, tt := range []struct {
		r    Request
		want Action
		rule string
	}{
		{req(TypeStream, "10.0.0.7:443", "good.test"), Allow, "good.test"},
		{req(TypeStream, "10.0.0.7:443", ""), Deny, ""},
		{req(TypeStream, "10.0.0.7:80", "good.test"), Deny, ""},
		{req(TypeDgram, "10.0.0.7:443", "good.test"), Deny, ""},
		// Two names for one address: the first rule that matches one of
		// them wins, whichever the program meant.
		{req(TypeStream, "10.0.0.7:443", "good.test bad.test"), Deny, "bad.test"},
		// A lookup never lifts a deny by name: bad.test's load-time
		// address stays denied under any other name the program got for it.
		{req(TypeStream, "10.0.0.9:443", "good.test"), Allow, "good.test"},
		{req(TypeDgram, "[fd00::7]:443", "edge.cdn.test"), Allow, "cdn.test"},
		{req(TypeDgram, "[fd00::7]:443", "cdn.test"), Deny, ""},
		// Load-time addresses still match, without any lookup.
		{req(TypeStream, "10.1.2.3:5432", ""), Allow, "db.internal"},
		// ... but not once the program's lookups named the address
		// otherwise: they say what it is.
		{req(TypeStream, "10.1.2.3:5432", "other.test"), Deny, ""},
		// The hosts file's names alone are no lookup.
		{hostsOnly, Allow, "db.internal"},
		// A rule by name before an address rule wins over it; after it,
		// not.
		{req(TypeStream, "10.9.0.1:443", "good.test"), Allow, "good.test"},
		{req(TypeStream, "10.9.0.1:80", "late.test"), Deny, "10.9.0.0/16"},
	} {
		d := p.Decide(tt.r)
		if d.Action != tt.want || !strings.Contains(d.Rule, tt.rule) {
			t.Errorf("%s names %q: %v by %q, want %v by a rule with %q", tt.r.Dest(), tt.r.Names, d.Action, d.Rule, tt.want, tt.rule)
		}
		if ref := referenceDecide(p, tt.r); ref.Action != d.Action || ref.Rule != d.Rule {
			t.Errorf("%s: the reference scan says %v by %q, Decide %v by %q", tt.r.Dest(), ref.Action, ref.Rule, d.Action, d.Rule)
		}
	}
	if !p.HasNameRules() || namedPolicy(t, "rules:\n  - allow: 10.0.0.1\n").HasNameRules() {
		t.Error("HasNameRules")
	}
}

func TestDecideQuery(t *testing.T) {
	p := namedPolicy(t, `rules:
  - allow: tcp:ok.ads.test:443
  - deny: "*.ads.test"
  - deny: tcp:mail.test:25
  - deny: quiet.test
    dns: refused
  - deny: udp:noisy.test
`)
	for _, tt := range []struct {
		name          string
		deny, refused bool
	}{
		{"x.ads.test", true, false},
		{"X.Ads.Test.", true, false},
		{"ok.ads.test", false, false}, // an earlier rule names it: the lookup goes through
		{"ads.test", false, false},
		{"mail.test", false, false}, // denied on one port only: the lookup goes through
		{"quiet.test", true, true},
		{"noisy.test", false, false}, // udp only
		{"other.test", false, false},
	} {
		v := p.DecideQuery(tt.name)
		if v.Deny != tt.deny || v.Refused != tt.refused || v.Deny != (v.Rule != "") {
			t.Errorf("DecideQuery(%q) = %+v, want deny %v refused %v", tt.name, v, tt.deny, tt.refused)
		}
	}
}

// FuzzNameRule: a DEST by name parses to a normalized pattern that matches
// what it says and reads back from its own rendering.
func FuzzNameRule(f *testing.F) {
	for _, s := range []string{"api.example.com", "*.example.com", "A.B.", "*.x", "x_y.test", "*.*.x", "1.2.3.4", "a..b", "-a.b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDest("tcp:"+s+":443", nil)
		if err != nil || d.Host == "" {
			return
		}
		if d.Host != NameOf(d.Host) || len(d.Prefixes) != 0 {
			t.Fatalf("%q: host %q not normalized, or resolved without a resolver", s, d.Host)
		}
		back, err := ParseDest(d.String(), nil)
		if err != nil || back.Host != d.Host || back.Ports != d.Ports || back.Types != d.Types {
			t.Fatalf("%q renders as %q, which reads back as %+v, %v", s, d.String(), back, err)
		}
		r := inet(TypeStream, "192.0.2.1:443")
		if suffix, glob := strings.CutPrefix(d.Host, "*."); glob {
			if !MatchName(d.Host, "x."+suffix) || MatchName(d.Host, suffix) {
				t.Fatalf("%q: glob matching is wrong", d.Host)
			}
			r.Names = "x." + suffix
		} else {
			r.Names = d.Host
		}
		if !d.Matches(r) {
			t.Fatalf("%q does not match its own name %q", s, r.Names)
		}
		r.Names = ""
		if d.Matches(r) {
			t.Fatalf("%q matches an address without any name", s)
		}
	})
}

// TestSharedAddressFollowsTheLookup: a CDN address that the load-time
// lookup of a name also returned. An allow by name follows the program's
// lookups; a deny by name keeps its load-time addresses, whatever other name
// the program got them under (an attacker's zone can name any address).
func TestSharedAddressFollowsTheLookup(t *testing.T) {
	for _, tt := range []struct {
		policy, names string
		want          Action
	}{
		{"  - allow: tcp:db.internal:5432\n", "", Allow},                // no lookup: load-time addresses stand in
		{"  - allow: tcp:db.internal:5432\n", "other.test", Deny},       // looked up as another name: not db.internal
		{"  - allow: tcp:db.internal:5432\n", "db.internal", Allow},     // looked up as db.internal
		{"  - deny: tcp:db.internal:5432\n", "", Deny},                  // no lookup
		{"  - deny: tcp:db.internal:5432\n", "nip.attacker.test", Deny}, // a lookup does not lift the deny
		{"  - deny: tcp:db.internal:5432\n  - allow: tcp:good.test:5432\n", "good.test", Deny},
		{"  - allow: tcp:good.test:5432\n  - deny: tcp:db.internal:5432\n", "good.test", Allow}, // first match
	} {
		p := namedPolicy(t, "default: deny\nrules:\n"+tt.policy)
		r := inet(TypeStream, "10.1.2.3:5432") // db.internal's address at load
		r.Names, r.Looked = tt.names, tt.names != ""
		d := p.Decide(r)
		if d.Action != tt.want {
			t.Errorf("%snames %q: %v by %q, want %v", tt.policy, tt.names, d.Action, d.Rule, tt.want)
		}
		if ref := referenceDecide(p, r); ref.Action != d.Action || ref.Rule != d.Rule {
			t.Errorf("%snames %q: the reference scan says %v by %q", tt.policy, tt.names, ref.Action, ref.Rule)
		}
	}
}

func TestNamesNoRuleCanSpellNameNothing(t *testing.T) {
	n := NewNames(0)
	for _, q := range []string{`x\ api.example.com.`, `api\.example.com.`, "a b.example.com"} {
		if got := n.Observe(t0, q, []RR{{Name: q, TTL: 60, Addr: addr("10.0.0.1")}}); len(got) != 0 {
			t.Errorf("%q named %v", q, got)
		}
	}
	n.Observe(t0, "ok.test", []RR{{Name: "ok.test", TTL: 60, Target: `evil\.x.test`}, {Name: `evil\.x.test`, TTL: 60, Addr: addr("10.0.0.2")}})
	if s, _ := n.Lookup(addr("10.0.0.2"), t0); s != "" {
		t.Errorf("a chain through an escaped name named %q", s)
	}
	// A TTL above 2^31-1 counts as 0 (RFC 2181): only the grace is left.
	n.Observe(t0, "huge.test", []RR{{Name: "huge.test", TTL: 1<<31 + 5, Addr: addr("10.0.0.3")}})
	if s, _ := n.Lookup(addr("10.0.0.3"), t0.Add(time.Second)); s != "" {
		t.Errorf("a TTL over 2^31-1 still covers: %q", s)
	}
	// One address keeps at most maxNamesPerAddr names, the newest.
	for i := range 100 {
		q := "w" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + ".test"
		n.Observe(t0.Add(time.Duration(i)), q, []RR{{Name: q, TTL: 60, Addr: addr("10.0.0.4")}})
	}
	if s, _ := n.Lookup(addr("10.0.0.4"), t0.Add(time.Second)); len(strings.Fields(s)) != maxNamesPerAddr || !strings.HasPrefix(s, "wvd.test ") {
		t.Errorf("after 100 names: %d kept, first %q", len(strings.Fields(s)), strings.Fields(s)[0])
	}
}

// referenceDecide decides r by the plain first-match scan.
func referenceDecide(p *Policy, r Request) Decision {
	if i := p.lookupLinear(r); i != noRule {
		return p.rules[i].Verdict.decision(r, p.rules[i].Text)
	}
	return p.fallback(normalize(r))
}
