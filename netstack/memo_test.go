package netstack

import (
	"net/netip"
	"sync"
	"testing"
)

// TestInetMemoIsExact: requests that share a memo slot but differ in
// address, port, type, family or zone, decided in turn and from several
// goroutines at once, each get what the linear scan says.
func TestInetMemoIsExact(t *testing.T) {
	var rules []Rule
	for _, f := range [][2]string{
		{"allow", "udp:127.0.0.1:53"},
		{"deny", "tcp:127.0.0.1"},
		{"redirect", "udp:127.0.0.1:1-100=127.0.0.2"},
		{"allow", "udp:[::1]"},
		{"allow", "udp:10.0.0.0/8"},
	} {
		rl, err := ParseFlag(f[0], f[1], nil)
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, rl)
	}
	p, err := NewPolicy("memo", Default{Verdict: verdictDeny}, rules, nil)
	if err != nil {
		t.Fatal(err)
	}
	var reqs []Request
	for _, a := range []string{"127.0.0.1", "127.0.0.5", "::ffff:127.0.0.1", "::1", "fe80::1%2", "10.1.2.3", "0.0.0.1"} {
		for _, port := range []uint16{53, 57, 5, 9, 1000} { // 53^57 and 5^9 share slots with a same-octet address
			for _, typ := range []SockType{TypeStream, TypeDgram, TypeSeqpacket, 7} {
				for _, fam := range []Family{FamilyInet, FamilyInet6} {
					reqs = append(reqs, Request{Op: OpSend, Family: fam, Type: typ,
						Addr: netip.AddrPortFrom(netip.MustParseAddr(a), port)})
				}
			}
		}
	}
	want := make([]Decision, len(reqs))
	for i, r := range reqs {
		want[i] = p.fallback(normalize(r))
		if j := p.lookupLinear(r); j != noRule {
			want[i] = p.rules[j].Verdict.decision(r, p.rules[j].Text)
		}
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 50 * len(reqs) {
				i := (k*7 + g) % len(reqs)
				if got := p.Decide(reqs[i]); got != want[i] {
					t.Errorf("Decide(%s %s %s) = %+v, want %+v", reqs[i].Dest(), reqs[i].Family, reqs[i].Type, got, want[i])
					return
				}
			}
		}()
	}
	wg.Wait()
}
