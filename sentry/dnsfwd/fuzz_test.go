package dnsfwd

import (
	"bytes"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/sirupsen/logrus"

	"sandbox/netstack"
)

// FuzzAnswer feeds the forwarder's answer and query paths arbitrary
// messages: they never panic; an answer passes unchanged unless it is
// replaced by a well-formed denial of the same ID; every address named is
// one of the answer's own, named by the question or a name on its chain.
func FuzzAnswer(f *testing.F) {
	seed := func(q string, rrs ...string) {
		var m dns.Msg
		m.SetQuestion(q, dns.TypeA)
		m.Response = true
		for _, s := range rrs {
			rr, _ := dns.NewRR(s)
			m.Answer = append(m.Answer, rr)
		}
		b, _ := m.Pack()
		f.Add(b)
	}
	seed("a.test.", "a.test. 60 IN A 10.0.0.1")
	seed("a.test.", "a.test. 60 IN CNAME b.test.", "b.test. 5 IN A 10.0.0.2", "c.test. 5 IN A 10.0.0.3")
	seed("a.test.", "a.test. 60 IN CNAME x.bad.test.", "x.bad.test. 5 IN A 10.0.0.4")
	seed("loop.test.", "loop.test. 60 IN CNAME loop.test.", "loop.test. 60 IN AAAA fd00::1")
	f.Add([]byte{0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0})
	p, err := netstack.ParsePolicy("p.yaml", []byte("rules:\n  - deny: \"*.bad.test\"\n"), nil)
	if err != nil {
		f.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	f.Fuzz(func(t *testing.T, b []byte) {
		names := netstack.NewNames(0)
		fw := &Forwarder{names: names, judge: p.DecideQuery, denies: true, trust: func(netip.AddrPort, bool) bool { return true }, log: log, now: time.Now}
		r := netip.MustParseAddrPort("127.0.0.1:53")
		orig := append([]byte(nil), b...)
		out := fw.answer(b, r, "udp")
		if !bytes.Equal(b, orig) {
			t.Fatal("answer changed its input")
		}
		var in dns.Msg
		decoded := in.Unpack(b) == nil
		if !bytes.Equal(out, b) {
			var m dns.Msg
			if m.Unpack(out) != nil || len(b) < 2 || m.Id != uint16(b[0])<<8|uint16(b[1]) || m.Rcode != dns.RcodeNameError {
				t.Fatalf("an answer was replaced by something other than its denial: %x", out)
			}
		}
		if decoded && len(in.Question) > 0 {
			addrs := func(rrs []dns.RR) map[netip.Addr]bool {
				m := map[netip.Addr]bool{}
				for _, rr := range rrs {
					switch x := rr.(type) {
					case *dns.A:
						a, _ := netip.AddrFromSlice(x.A.To4())
						m[a] = true
					case *dns.AAAA:
						a, _ := netip.AddrFromSlice(x.AAAA.To16())
						m[a.Unmap()] = true
					}
				}
				return m
			}
			own := addrs(in.Answer)
			q := netstack.NameOf(in.Question[0].Name)
			for a := range own {
				if s, _ := names.Lookup(a, time.Now()); s != "" && strings.Fields(s)[0] != q {
					t.Fatalf("%v named %q, not first by the question %q", a, s, q)
				}
			}
			// The other sections name nothing.
			for a := range addrs(append(in.Ns, in.Extra...)) {
				if s, _ := names.Lookup(a, time.Now()); s != "" && !own[a] {
					t.Fatalf("%v, outside the answer section, was named %q", a, s)
				}
			}
		}
		fw.query(b, r, "udp") // must not panic either
	})
}
