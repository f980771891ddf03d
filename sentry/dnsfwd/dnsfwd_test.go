package dnsfwd

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/sirupsen/logrus"

	"sandbox/netstack"
	"sandbox/sentry/front"
)

// resolverStub is a resolver for the tests, on loopback: it answers from a
// fixed table and remembers the names it was asked.
type resolverStub struct {
	addr    netip.AddrPort
	mu      sync.Mutex
	asked   []string
	answers map[string][]dns.RR
	silent  bool
	tc      bool // UDP answers are truncated, TCP ones whole
	raw     []byte
}

func startResolver(t *testing.T, records ...string) *resolverStub {
	t.Helper()
	u := &resolverStub{answers: map[string][]dns.RR{}}
	for _, r := range records {
		rr, err := dns.NewRR(r)
		if err != nil {
			t.Fatal(err)
		}
		n := strings.ToLower(rr.Header().Name)
		u.answers[n] = append(u.answers[n], rr)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.addr = pc.LocalAddr().(*net.UDPAddr).AddrPort()
	ln, err := net.Listen("tcp", u.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		u.mu.Lock()
		u.asked = append(u.asked, w.RemoteAddr().Network()+" "+q.Question[0].Name)
		silent, tc := u.silent, u.tc
		u.mu.Unlock()
		if silent {
			return
		}
		var m dns.Msg
		m.SetReply(q)
		if tc && w.RemoteAddr().Network() == "udp" {
			m.Truncated = true
		} else {
			// The whole chain from the question, as a recursive resolver
			// gives it, plus an unrelated record that must name nothing.
			for name := strings.ToLower(q.Question[0].Name); ; {
				rrs := u.answers[name]
				if len(rrs) == 0 {
					break
				}
				m.Answer = append(m.Answer, rrs...)
				c, ok := rrs[0].(*dns.CNAME)
				if !ok {
					break
				}
				name = strings.ToLower(c.Target)
			}
			if rrs := u.answers["unrelated.test."]; len(rrs) > 0 {
				m.Extra = append(m.Extra, rrs...)
			}
			if len(m.Answer) == 0 {
				m.Rcode = dns.RcodeNameError
			}
		}
		b, _ := m.Pack()
		u.mu.Lock()
		u.raw = b
		u.mu.Unlock()
		w.Write(b)
	})
	us := &dns.Server{PacketConn: pc, Handler: handler}
	ts := &dns.Server{Listener: ln, Handler: handler}
	go us.ActivateAndServe()
	go ts.ActivateAndServe()
	t.Cleanup(func() { us.Shutdown(); ts.Shutdown() })
	return u
}

func (u *resolverStub) questions() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.asked...)
}

func (u *resolverStub) lastAnswer() []byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.raw
}

func newForwarder(t *testing.T, policy string) (*Forwarder, *netstack.Names) {
	t.Helper()
	p, err := netstack.ParsePolicy("p.yaml", []byte(policy), nil)
	if err != nil {
		t.Fatal(err)
	}
	names := netstack.NewNames(0)
	log := logrus.New()
	log.SetOutput(io.Discard)
	f := New(names, p.DecideQuery, p.DeniesLookups(), func(netip.AddrPort, bool) bool { return !untrusted.Load() }, log)
	t.Cleanup(f.Close)
	return f, names
}

// untrusted is what the tests' Trust answers, negated.
var untrusted atomic.Bool

func query(t *testing.T, name string, qtype uint16) []byte {
	t.Helper()
	var q dns.Msg
	q.SetQuestion(dns.Fqdn(name), qtype)
	q.Id = 0x4242
	b, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// exchange sends b over a UDP socket connected to front, as glibc and Go
// do, and returns the answer, or nil after wait.
func exchange(t *testing.T, front, peer netip.AddrPort, b []byte, wait time.Duration) []byte {
	t.Helper()
	c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(peer), net.UDPAddrFromAddrPort(front))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

func unpack(t *testing.T, b []byte) *dns.Msg {
	t.Helper()
	var m dns.Msg
	if err := m.Unpack(b); err != nil {
		t.Fatalf("answer does not decode: %v", err)
	}
	return &m
}

func TestAnswersPassUnchangedAndNameTheChain(t *testing.T) {
	peer := freePort(t, "udp")
	u := startResolver(t,
		"www.web.test. 300 IN CNAME edge.cdn.test.",
		"edge.cdn.test. 60 IN A 10.0.0.7",
		"unrelated.test. 60 IN A 10.0.0.99")
	f, names := newForwarder(t, "rules: []\n")
	front, err := f.Front(u.addr, false, peer, noAdm)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := f.Front(u.addr, false, peer, noAdm); again != front {
		t.Errorf("a second Front for the same resolver is %v, not %v", again, front)
	}
	got := exchange(t, front, peer, query(t, "WWW.web.test", dns.TypeA), 2*time.Second)
	// The names are recorded before the program can read the answer.
	if s, looked := names.Lookup(netip.MustParseAddr("10.0.0.7"), time.Now()); s != "www.web.test edge.cdn.test" || !looked {
		t.Errorf("10.0.0.7 is named %q when the answer arrives", s)
	}
	if !bytes.Equal(got, u.lastAnswer()) || got == nil {
		t.Errorf("the program got %x, the resolver sent %x", got, u.lastAnswer())
	}
	if s, _ := names.Lookup(netip.MustParseAddr("10.0.0.99"), time.Now()); s != "" {
		t.Errorf("a record off the question's chain named %q", s)
	}
	if q := u.questions(); len(q) != 1 || q[0] != "udp WWW.web.test." {
		t.Errorf("the resolver was asked %q, want the query unchanged", q)
	}
}

func TestDeniedNamesAreAnsweredHere(t *testing.T) {
	peer := freePort(t, "udp")
	u := startResolver(t,
		"ads.test. 60 IN A 10.0.0.8",
		"quiet.test. 60 IN A 10.0.0.8",
		"www.good.test. 60 IN CNAME x.ads.test.",
		"x.ads.test. 60 IN A 10.0.0.9")
	f, names := newForwarder(t, `rules:
  - deny: "*.ads.test"
  - deny: ads.test
  - deny: quiet.test
    dns: refused
`)
	front, _ := f.Front(u.addr, false, peer, noAdm)
	for _, tt := range []struct {
		name  string
		rcode int
		asked bool
	}{
		{"ads.test", dns.RcodeNameError, false},
		{"quiet.test", dns.RcodeRefused, false},
		// A chain into a denied name: asked, then answered NXDOMAIN.
		{"www.good.test", dns.RcodeNameError, true},
	} {
		before := len(u.questions())
		b := exchange(t, front, peer, query(t, tt.name, dns.TypeA), 2*time.Second)
		if b == nil {
			t.Fatalf("%s: no answer", tt.name)
		}
		m := unpack(t, b)
		if m.Rcode != tt.rcode || m.Id != 0x4242 || len(m.Answer) != 0 || len(m.Question) != 1 || m.Question[0].Name != tt.name+"." {
			t.Errorf("%s: got %v", tt.name, m)
		}
		if asked := len(u.questions()) > before; asked != tt.asked {
			t.Errorf("%s: the resolver was asked: %v, want %v", tt.name, asked, tt.asked)
		}
	}
	if s, _ := names.Lookup(netip.MustParseAddr("10.0.0.9"), time.Now()); s != "" {
		t.Errorf("a denied answer named %q", s)
	}
}

func TestTruncatedAnswersAndTheTCPFallback(t *testing.T) {
	peer := freePort(t, "udp")
	u := startResolver(t, "big.test. 60 IN A 10.0.0.10")
	u.mu.Lock()
	u.tc = true
	u.mu.Unlock()
	f, names := newForwarder(t, "rules: []\n")
	front, _ := f.Front(u.addr, false, peer, noAdm)
	m := unpack(t, exchange(t, front, peer, query(t, "big.test", dns.TypeA), 2*time.Second))
	if !m.Truncated || len(m.Answer) != 0 {
		t.Fatalf("the truncated answer did not pass as it was: %v", m)
	}
	tpeer := freePort(t, "tcp")
	tfront, err := f.Front(u.addr, true, tpeer, noAdm)
	if err != nil {
		t.Fatal(err)
	}
	c, err := (&net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(tpeer)}).Dial("tcp", tfront.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Two queries on one connection, as resolvers pipeline them.
	for i := 0; i < 2; i++ {
		if err := writeFrame(c, query(t, "big.test", dns.TypeA)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		b, err := readFrame(c)
		if err != nil {
			t.Fatal(err)
		}
		if m := unpack(t, b); m.Truncated || len(m.Answer) != 1 {
			t.Errorf("TCP answer %d: %v", i, m)
		}
	}
	if s, _ := names.Lookup(netip.MustParseAddr("10.0.0.10"), time.Now()); s != "big.test" {
		t.Errorf("the TCP answer named %q", s)
	}
	if q := u.questions(); len(q) != 3 || q[1] != "tcp big.test." {
		t.Errorf("the resolver was asked %q", q)
	}
}

func TestASilentResolverStaysSilent(t *testing.T) {
	peer := freePort(t, "udp")
	u := startResolver(t, "x.test. 60 IN A 10.0.0.11")
	u.mu.Lock()
	u.silent = true
	u.mu.Unlock()
	f, _ := newForwarder(t, "rules: []\n")
	front, _ := f.Front(u.addr, false, peer, noAdm)
	if b := exchange(t, front, peer, query(t, "x.test", dns.TypeA), 300*time.Millisecond); b != nil {
		t.Errorf("a silent resolver answered %x", b)
	}
	if len(u.questions()) != 1 {
		t.Errorf("the query did not reach the resolver: %q", u.questions())
	}
	f.Close()
	if _, err := f.Front(u.addr, false, peer, noAdm); err == nil {
		t.Error("Front after Close")
	}
}

// TestQueriesThatCannotBeJudged: a query whose questions cannot be read is
// forwarded as it is, unless the policy denies lookups (then FORMERR, and
// the resolver never sees it); a "query" with the QR bit is dropped; a
// query that miekg cannot unpack whole is still judged by its questions.
func TestQueriesThatCannotBeJudged(t *testing.T) {
	peer := freePort(t, "udp")
	raw, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	got := make(chan []byte, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := raw.ReadFrom(buf)
			if err != nil {
				return
			}
			got <- append([]byte(nil), buf[:n]...)
		}
	}()
	resolver := raw.LocalAddr().(*net.UDPAddr).AddrPort()
	arrived := func() int {
		time.Sleep(200 * time.Millisecond)
		return len(got)
	}
	garbage := []byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xff} // one question, cut off
	// No denials: forwarded as it is.
	f, _ := newForwarder(t, "rules: []\n")
	front, _ := f.Front(resolver, false, peer, noAdm)
	if b := exchange(t, front, peer, garbage, 300*time.Millisecond); b != nil || arrived() != 1 || !bytes.Equal(<-got, garbage) {
		t.Fatalf("without denials the unreadable query should reach the resolver unchanged")
	}
	// With denials: FORMERR, nothing forwarded.
	f, _ = newForwarder(t, "rules:\n  - deny: bad.test\n")
	front, _ = f.Front(resolver, false, peer, noAdm)
	b := exchange(t, front, peer, garbage, time.Second)
	if m := unpack(t, b); m.Rcode != dns.RcodeFormatError || m.Id != 0x1234 || arrived() != 0 {
		t.Errorf("with denials: %v, %d forwarded", m, len(got))
	}
	// QR set: dropped.
	q := query(t, "ok.test", dns.TypeA)
	q[2] |= 0x80
	if b := exchange(t, front, peer, q, 300*time.Millisecond); b != nil || arrived() != 0 {
		t.Errorf("a response sent as a query was answered or forwarded")
	}
	// An OPT record miekg rejects does not hide a denied question.
	var m dns.Msg
	m.SetQuestion("bad.test.", dns.TypeA)
	m.Id = 0x4242
	wire, _ := m.Pack()
	wire[11] = 1 // ARCOUNT 1, and a truncated OPT after the question
	wire = append(wire, 0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 9, 0, 1)
	b = exchange(t, front, peer, wire, time.Second)
	if m := unpack(t, b); m.Rcode != dns.RcodeNameError || arrived() != 0 {
		t.Errorf("a malformed query for a denied name: %v, %d forwarded", m, len(got))
	}
}

// TestUntrustedResolversNameNothing: the answer of a resolver Trust turns
// down passes unchanged, and names nothing.
func TestUntrustedResolversNameNothing(t *testing.T) {
	peer := freePort(t, "udp")
	u := startResolver(t, "own.test. 60 IN A 10.0.0.12")
	untrusted.Store(true)
	defer untrusted.Store(false)
	f, names := newForwarder(t, "rules: []\n")
	front, _ := f.Front(u.addr, false, peer, noAdm)
	b := exchange(t, front, peer, query(t, "own.test", dns.TypeA), 2*time.Second)
	if !bytes.Equal(b, u.lastAnswer()) || b == nil {
		t.Errorf("the answer did not pass unchanged")
	}
	if s, _ := names.Lookup(netip.MustParseAddr("10.0.0.12"), time.Now()); s != "" {
		t.Errorf("an untrusted resolver named %q", s)
	}
}

// TestFrontsAnswerOnlyTheProgramsSockets: another process on loopback gets
// nothing from a front: no resolver is reached through it.
func TestFrontsAnswerOnlyTheProgramsSockets(t *testing.T) {
	u := startResolver(t, "a.test. 60 IN A 10.0.0.13")
	f, _ := newForwarder(t, "rules: []\n")
	front, _ := f.Front(u.addr, false, freePort(t, "udp"), noAdm)
	if b := exchange(t, front, freePort(t, "udp"), query(t, "a.test", dns.TypeA), 300*time.Millisecond); b != nil || len(u.questions()) != 0 {
		t.Errorf("a foreign socket was answered (%d questions reached the resolver)", len(u.questions()))
	}
}

// freePort is a loopback port nothing uses now.
func freePort(t testing.TB, network string) netip.AddrPort {
	t.Helper()
	p, err := front.FreePort(network)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// noAdm admits a socket as the supervisor's own, answered by the front.
var noAdm front.Admission
