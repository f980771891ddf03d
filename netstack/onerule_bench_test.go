package netstack

import (
	"net/netip"
	"testing"
)

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
