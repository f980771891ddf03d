package netstack

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// bigPolicy builds n random CIDR+port rules over the whole address space
// (IPv6 when v6), and requests half of which fall inside some rule's
// prefix.
func bigPolicy(tb testing.TB, n int, v6 bool, samePrefix bool) (*Policy, []Request) {
	rng := rand.New(rand.NewPCG(7, 8))
	randAddr := func() netip.Addr {
		if v6 {
			var b [16]byte
			for i := range b {
				b[i] = byte(rng.IntN(256))
			}
			b[0] = 0x20
			return netip.AddrFrom16(b)
		}
		return netip.AddrFrom4([4]byte{byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))})
	}
	var rules []Rule
	var addrs []netip.Addr
	for len(rules) < n {
		a := randAddr()
		bits := 8 + rng.IntN(25)
		if v6 {
			bits = 16 + rng.IntN(113)
		}
		if samePrefix {
			a, bits = netip.AddrFrom4([4]byte{10, 0, 0, 0}), 8
		}
		pf, _ := a.Prefix(bits)
		dest := pf.String()
		if v6 {
			dest = "[" + dest + "]"
		}
		lo := rng.IntN(65536)
		hi := min(65535, lo+rng.IntN(3)*rng.IntN(100))
		dest = fmt.Sprintf("%s%s:%d-%d", pick(rng, "tcp:", "udp:"), dest, lo, hi)
		rl, err := ParseFlag(pick(rng, actions...), dest, nil)
		if err != nil {
			tb.Fatal(err)
		}
		rules = append(rules, rl)
		addrs = append(addrs, a)
	}
	p, err := NewPolicy("bench", Default{Verdict: verdictDeny}, rules, nil)
	if err != nil {
		tb.Fatal(err)
	}
	reqs := make([]Request, 4096)
	for i := range reqs {
		a := randAddr()
		if i%2 == 0 {
			a = addrs[rng.IntN(len(addrs))]
		}
		f := FamilyInet
		if v6 {
			f = FamilyInet6
		}
		reqs[i] = Request{Family: f, Type: pick(rng, TypeStream, TypeDgram), Addr: netip.AddrPortFrom(a, uint16(rng.IntN(65536)))}
	}
	return p, reqs
}

func benchDecide(b *testing.B, v6, same bool) {
	p, reqs := bigPolicy(b, 10000, v6, same)
	b.ResetTimer()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p.Decide(reqs[i&4095])
	}
}

// BenchmarkDecide10k: 10,000 random IPv4 CIDR+port rules. Budget: 1 µs a
// decision (go test -run X -bench Decide10k ./netstack).
func BenchmarkDecide10k(b *testing.B) { benchDecide(b, false, false) }

// BenchmarkDecide10kIPv6: the same over IPv6 (a deeper trie).
func BenchmarkDecide10kIPv6(b *testing.B) { benchDecide(b, true, false) }

// BenchmarkDecide10kSamePrefix: 10,000 rules on 10.0.0.0/8 that differ
// only by port: the port tables' worst case.
func BenchmarkDecide10kSamePrefix(b *testing.B) { benchDecide(b, false, true) }

// BenchmarkDecideOneRule: the hot path of a run with one explicit rule
// (--allow udp:127.0.0.1 over the "self" default), a matching send.
func BenchmarkDecideOneRule(b *testing.B) {
	rl, err := ParseFlag("allow", "udp:127.0.0.1", nil)
	if err != nil {
		b.Fatal(err)
	}
	p, err := SelfPolicy().WithFlags([]Rule{rl})
	if err != nil {
		b.Fatal(err)
	}
	r := Request{Op: OpSend, Family: FamilyInet, Type: TypeDgram, Addr: netip.MustParseAddrPort("127.0.0.1:4000"), PID: 5}
	b.ReportAllocs()
	for b.Loop() {
		if d := p.Decide(r); d.Action != Allow {
			b.Fatal(d)
		}
	}
}

// BenchmarkDecideLinear10k is the naive scan the trie replaces, for
// comparison.
func BenchmarkDecideLinear10k(b *testing.B) {
	p, reqs := bigPolicy(b, 10000, false, false)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		p.lookupLinear(reqs[i&4095])
	}
}

// TestDecide10kMatchesLinear: the trie's answers with 10,000 rules are the
// naive scan's. (The cost, budgeted at 1 µs a decision, is
// BenchmarkDecide10k's to measure: a timed test failed under load.)
func TestDecide10kMatchesLinear(t *testing.T) {
	p, reqs := bigPolicy(t, 10000, false, false)
	for _, r := range reqs[:512] {
		checkFastEqualsLinear(t, p, r)
	}
}
