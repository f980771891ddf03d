package netstack

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// chooser feeds the random policy generator: math/rand for tests and
// benchmarks, fuzz bytes for FuzzDecide.
type chooser interface{ IntN(n int) int }

type bytesChooser struct {
	b []byte
	i int
}

func (c *bytesChooser) IntN(n int) int {
	if c.i >= len(c.b) {
		return 0
	}
	v := int(c.b[c.i])
	c.i++
	return v % n
}

func pick[T any](c chooser, xs ...T) T { return xs[c.IntN(len(xs))] }

// A small universe of addresses and ports, so that random rules and
// requests collide often: nested prefixes, shared ports, v4-mapped forms.
var (
	octets  = []int{0, 1, 2, 128, 255}
	v4Bits  = []int{0, 1, 7, 8, 16, 23, 24, 25, 31, 32}
	v6Bits  = []int{0, 1, 8, 16, 64, 96, 104, 120, 127, 128}
	ports   = []int{0, 1, 22, 53, 79, 80, 81, 443, 8080, 65534, 65535}
	globs   = []string{"unix:/run/*", "unix:/run/a.sock", "unix:/run/[ab].sock", "unix:/*/*", "unix:@x*", "unix:@*", "unix:@", "unix:*"}
	uPaths  = []string{"/run/a.sock", "/run/b.sock", "/run/sub/a.sock", "/tmp/x", ""}
	uNames  = []string{"x", "xy", "", "/tmp/.X11-unix/X0"}
	actions = []string{"allow", "deny", "refuse", "unreachable", "timeout"}
)

func randV4(c chooser) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(pick(c, octets...)), byte(pick(c, octets...)), byte(pick(c, octets...))})
}

func randV6(c chooser) netip.Addr {
	var b [16]byte
	b[0], b[1] = 0xfd, byte(pick(c, octets...))
	b[14], b[15] = byte(pick(c, octets...)), byte(pick(c, octets...))
	if c.IntN(4) == 0 { // v4-mapped
		a := randV4(c).As4()
		b = [16]byte{10: 0xff, 11: 0xff, 12: a[0], 13: a[1], 14: a[2], 15: a[3]}
	}
	return netip.AddrFrom16(b)
}

func randPorts(c chooser) string {
	switch c.IntN(4) {
	case 0:
		return ""
	case 1, 2:
		return fmt.Sprintf(":%d", pick(c, ports...))
	}
	lo, hi := pick(c, ports...), pick(c, ports...)
	if lo > hi {
		lo, hi = hi, lo
	}
	return fmt.Sprintf(":%d-%d", lo, hi)
}

func randDest(c chooser) string {
	proto := pick(c, "", "", "tcp:", "udp:")
	switch c.IntN(10) {
	case 0:
		return "*"
	case 1:
		return pick(c, globs...)
	case 2:
		return proto + "*" + randPorts(c)
	case 3, 4, 5, 6:
		p, _ := randV4(c).Prefix(pick(c, v4Bits...))
		return proto + p.String() + randPorts(c)
	}
	p, _ := randV6(c).Prefix(pick(c, v6Bits...))
	return proto + "[" + p.String() + "]" + randPorts(c)
}

// randRules makes n valid rules, mostly as flags would.
func randRules(c chooser, n int) []Rule {
	var out []Rule
	for len(out) < n {
		dest := randDest(c)
		if c.IntN(8) == 0 {
			dest = "10.0.0.0/8" // a hot prefix many rules share
		}
		rl, err := ParseFlag(pick(c, actions...), dest, nil)
		if err != nil {
			continue // e.g. a port range on "*" with no proto
		}
		if c.IntN(5) == 0 {
			rl.Dests = append(rl.Dests, rl.Dests[0])
			if d, err := ParseDest(randDest(c), nil); err == nil {
				rl.Dests[1] = d
			}
		}
		if c.IntN(4) == 0 {
			rl.Family = FamilySetOf(pick(c, FamilyInet, FamilyInet6, FamilyUnix, FamilyOther))
		}
		if c.IntN(4) == 0 {
			rl.Type = TypeSetOf(pick(c, TypeStream, TypeDgram, TypeSeqpacket, TypeOther))
		}
		if rl.validate() != nil {
			continue
		}
		rl.Text = fmt.Sprintf("rule %d", len(out))
		out = append(out, rl)
	}
	return out
}

func randRequest(c chooser) Request {
	r := Request{Type: pick(c, TypeStream, TypeDgram, TypeSeqpacket, TypeOther)}
	switch c.IntN(8) {
	case 0:
		r.Family = FamilyUnix
		if c.IntN(2) == 0 {
			r.Unix = UnixAddr{Abstract: true, Name: pick(c, uNames...)}
		} else {
			r.Unix = UnixAddr{Path: pick(c, uPaths...)}
		}
	case 1:
		r.Family = pick(c, FamilyOther, FamilyUnspec, FamilyInet)
	case 2, 3, 4:
		r.Family = FamilyInet
		r.Addr = netip.AddrPortFrom(randV4(c), uint16(pick(c, ports...)))
	default:
		r.Family = FamilyInet6
		r.Addr = netip.AddrPortFrom(randV6(c), uint16(pick(c, ports...)))
	}
	return r
}

// checkFastEqualsLinear fails t if the trie lookup and a linear scan pick
// different rules, or Decide differs from deciding by the linear pick.
func checkFastEqualsLinear(t *testing.T, p *Policy, r Request) {
	t.Helper()
	fast, slow := p.lookup(r), p.lookupLinear(r)
	if r.Family == FamilyUnspec {
		return
	}
	if fast != slow {
		t.Fatalf("request %s (%s %s): fast lookup picks rule %d, linear scan %d\nrules:\n%s", r.Dest(), r.Family, r.Type, fast, slow, p.format(false))
	}
	want := p.fallback(r)
	if slow != noRule {
		want = p.rules[slow].Verdict.decision(r, p.rules[slow].Text)
	}
	for range 2 { // the second from the memo of inet lookups
		if got := p.Decide(r); got != want {
			t.Fatalf("Decide(%s) = %+v, want %+v", r.Dest(), got, want)
		}
	}
}

func TestFastLookupEqualsLinearScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 300; iter++ {
		n := 1 + rng.IntN(60)
		if iter%50 == 0 {
			n = 2000
		}
		p, err := NewPolicy("random", Default{Verdict: verdictDeny}, randRules(rng, n), nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 500; i++ {
			checkFastEqualsLinear(t, p, randRequest(rng))
		}
	}
}

// Rules that share one prefix but differ by port exercise the port tables.
func TestFastLookupSharedPrefix(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var rules []Rule
	for i := 0; i < 3000; i++ {
		lo := rng.IntN(65536)
		hi := lo + rng.IntN(3)*rng.IntN(2000)
		if hi > 65535 {
			hi = 65535
		}
		rl, err := ParseFlag(pick[string](rng, actions...), fmt.Sprintf("%s10.0.0.0/8:%d-%d", pick(rng, "", "tcp:", "udp:"), lo, hi), nil)
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, rl)
	}
	p, err := NewPolicy("shared", Default{Verdict: verdictDeny}, rules, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20000; i++ {
		r := Request{Family: FamilyInet, Type: pick(rng, TypeStream, TypeDgram),
			Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, 2, 3}), uint16(rng.IntN(65536)))}
		checkFastEqualsLinear(t, p, r)
	}
}
