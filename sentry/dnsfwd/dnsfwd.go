// Package dnsfwd is the supervisor's DNS forwarder: the program's lookups
// (UDP and TCP port 53, to any resolver) are connected to it instead of to
// the resolver, and it forwards each query, unchanged, to the resolver the
// program addressed, and each answer, unchanged, back. On the way it
// records the answer's names (netstack.Names) before the program can read
// it, so that the connect that follows is decided with them, and it answers
// the lookups the policy denies itself (NXDOMAIN or REFUSED).
//
// One front per resolver and transport: a UDP socket and a TCP listener on
// loopback, which know their resolver. Each program socket that sends to a
// UDP front gets its own upstream socket, connected to the resolver, so
// that answers go back to the socket that asked, the resolver sees the
// query's own ID, and a resolver's ICMP errors stay with that exchange.
//
// Messages are decoded with github.com/miekg/dns. A query that does not
// decode is forwarded as it is (the resolver answers it as it would
// natively); an answer that does not decode names nothing.
package dnsfwd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/sirupsen/logrus"

	"sandbox/netstack"
	"sandbox/sentry/front"
)

// Judge decides a lookup by name (netstack.Policy.DecideQuery).
type Judge func(name string) netstack.QueryVerdict

// Trust reports whether answers from resolver may name addresses: a
// resolver the sandboxed program may be answering as names nothing.
type Trust func(resolver netip.AddrPort, stream bool) bool

// Forwarder is the supervisor's DNS forwarder. Safe for concurrent use.
type Forwarder struct {
	names *netstack.Names
	judge Judge
	trust Trust
	log   *logrus.Logger
	now   func() time.Time
	// denies: the policy denies some lookups, so a query whose questions
	// cannot be read is answered FORMERR instead of forwarded.
	denies bool

	untrusted sync.Once

	mu     sync.Mutex
	udp    map[netip.AddrPort]*udpFront
	tcp    map[netip.AddrPort]*tcpFront
	closed bool
	wg     sync.WaitGroup
}

// idle is how long an upstream socket outlives its last query. Resolvers
// retry within seconds (glibc's default timeout is 5 s); a program that
// reuses a socket later gets a fresh upstream.
const idle = 15 * time.Second

// maxUpstreams bounds the upstream sockets of one UDP front: past it,
// queries from new sockets are dropped (the program sees a resolver that
// does not answer) rather than the supervisor running out of descriptors.
// Go's resolver takes a socket per query: this allows some 270 lookups a
// second, sustained, per resolver.
const maxUpstreams = 1024

// maxFronts bounds the resolvers one forwarder serves (a policy that
// allows udp:*:53 could otherwise make a front per address).
const maxFronts = 64

// drain is how long a TCP exchange waits for the resolver's last answers
// once the program has closed its side.
const drain = 10 * time.Second

// New returns a forwarder that records into names the answers of the
// resolvers trust accepts, and asks judge about each lookup (denies: judge
// can deny some). log receives denials (warn) and answers (debug).
func New(names *netstack.Names, judge Judge, denies bool, trust Trust, log *logrus.Logger) *Forwarder {
	return &Forwarder{names: names, judge: judge, denies: denies, trust: trust, log: log, now: time.Now,
		udp: map[netip.AddrPort]*udpFront{}, tcp: map[netip.AddrPort]*tcpFront{}}
}

// Front returns the loopback address that stands for resolver: connect
// the program's socket to it (or send to it) instead. stream picks TCP.
// The front's address family is the resolver's (IPv4 loopback for an IPv4
// resolver, reached by an IPv6 socket as ::ffff:127.0.0.1).
//
// peer is where the front will see the program's socket (its bound port):
// a front on loopback is reachable by every process of the namespace, and
// answers only the sockets it was made for, as adm says: where an
// unconnected socket's answers come from, and who makes the upstream
// socket (the program's identity, front.Maker).
func (f *Forwarder) Front(resolver netip.AddrPort, stream bool, peer netip.AddrPort, adm front.Admission) (netip.AddrPort, error) {
	// The zone stays: a link-local resolver is reached through it.
	resolver = netip.AddrPortFrom(resolver.Addr().Unmap(), resolver.Port())
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return netip.AddrPort{}, errors.New("forwarder closed")
	}
	if f.udp[resolver] == nil && f.tcp[resolver] == nil && len(f.udp)+len(f.tcp) >= 2*maxFronts {
		return netip.AddrPort{}, fmt.Errorf("more than %d resolvers: udp:%s is not observed", maxFronts, resolver)
	}
	if stream {
		fr := f.tcp[resolver]
		if fr == nil {
			var err error
			if fr, err = f.newTCPFront(resolver); err != nil {
				return netip.AddrPort{}, err
			}
			f.tcp[resolver] = fr
		}
		if !fr.peers.Admit(peer, time.Now().Add(time.Minute), adm) {
			return netip.AddrPort{}, errors.New("a front serves at most 4096 sockets at once")
		}
		return fr.addr, nil
	}
	fr := f.udp[resolver]
	if fr == nil {
		var err error
		if fr, err = f.newUDPFront(resolver); err != nil {
			return netip.AddrPort{}, err
		}
		f.udp[resolver] = fr
	}
	if !fr.peers.Admit(peer, time.Now().Add(front.UDPAdmission), adm) {
		return netip.AddrPort{}, errors.New("a front serves at most 4096 sockets at once")
	}
	return fr.addr, nil
}

// Denies reports whether the policy denies some lookups (New's denies): a
// lookup that cannot go through a front must then not be made.
func (f *Forwarder) Denies() bool { return f.denies }

// Close stops every front and upstream and waits for their goroutines.
func (f *Forwarder) Close() {
	f.mu.Lock()
	f.closed = true
	for _, fr := range f.udp {
		fr.close()
	}
	for _, fr := range f.tcp {
		fr.ln.Close()
		fr.conns.EndAll()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// query decides one query: forward it as it is, answer it here (reply),
// or drop it.
func (f *Forwarder) query(b []byte, resolver netip.AddrPort, proto string) (reply []byte, forward bool) {
	qs, ok := questions(b)
	switch {
	case ok && b[2]&0x80 != 0:
		return nil, false // a response sent as a query: a resolver ignores it
	case !ok && f.denies:
		// Its names cannot be read, so it cannot be judged: never let a
		// lookup the policy may deny reach the resolver.
		return header(b, dns.RcodeFormatError), false
	case !ok:
		return nil, true
	}
	for _, q := range qs {
		if v := f.judge(netstack.NameOf(q.Name)); v.Deny {
			return f.deny(b, q, v, resolver, proto, "lookup denied"), false
		}
	}
	return nil, true
}

// questions reads a message's questions as leniently as a resolver would:
// the header and the question section only, whatever follows.
func questions(b []byte) ([]dns.Question, bool) {
	if len(b) < 12 {
		return nil, false
	}
	n := int(b[4])<<8 | int(b[5])
	if n == 0 {
		return nil, false
	}
	qs := make([]dns.Question, 0, min(n, 8))
	off := 12
	for range n {
		name, next, err := dns.UnpackDomainName(b, off)
		if err != nil || next+4 > len(b) {
			return nil, false
		}
		qs = append(qs, dns.Question{Name: name, Qtype: uint16(b[next])<<8 | uint16(b[next+1]), Qclass: uint16(b[next+2])<<8 | uint16(b[next+3])})
		off = next + 4
	}
	return qs, true
}

// header is an answer of b's ID with rcode and no sections.
func header(b []byte, rcode int) []byte {
	if len(b) < 2 {
		return nil
	}
	m := dns.Msg{MsgHdr: dns.MsgHdr{Id: uint16(b[0])<<8 | uint16(b[1]), Response: true, Rcode: rcode}}
	out, _ := m.Pack()
	return out
}

// deny answers the query b (question q) as the policy says.
func (f *Forwarder) deny(b []byte, q dns.Question, v netstack.QueryVerdict, resolver netip.AddrPort, proto, msg string) []byte {
	rcode := dns.RcodeNameError
	if v.Refused {
		rcode = dns.RcodeRefused
	}
	var m dns.Msg
	if m.Unpack(b) != nil {
		// Not a message miekg reads whole: answer with the question alone.
		m = dns.Msg{MsgHdr: dns.MsgHdr{Id: uint16(b[0])<<8 | uint16(b[1]), RecursionDesired: b[2]&1 != 0}, Question: []dns.Question{q}}
	}
	var r dns.Msg
	r.SetRcode(&m, rcode)
	r.Question = m.Question
	r.RecursionAvailable = true
	out, err := r.Pack()
	if err != nil {
		out = header(b, rcode)
	}
	f.log.WithFields(logrus.Fields{"name": netstack.NameOf(q.Name), "rule": v.Rule, "rcode": dns.RcodeToString[rcode],
		"resolver": proto + ":" + resolver.String()}).Warn("dns: " + msg)
	return out
}

// answer records an answer's names and returns what the program gets: the
// answer itself, or a denial when one of its questions or its CNAME chain
// names a denied name.
func (f *Forwarder) answer(b []byte, resolver netip.AddrPort, proto string) []byte {
	if qs, ok := questions(b); ok {
		for _, q := range qs {
			if v := f.judge(netstack.NameOf(q.Name)); v.Deny {
				return f.deny(b, q, v, resolver, proto, "answer for a denied name")
			}
		}
	}
	var m dns.Msg
	if m.Unpack(b) != nil || len(m.Question) == 0 || !m.Response {
		return b
	}
	var rrs []netstack.RR
	for _, rr := range m.Answer {
		h := rr.Header()
		switch r := rr.(type) {
		case *dns.A:
			if a, ok := netip.AddrFromSlice(r.A.To4()); ok {
				rrs = append(rrs, netstack.RR{Name: h.Name, TTL: h.Ttl, Addr: a})
			}
		case *dns.AAAA:
			if a, ok := netip.AddrFromSlice(r.AAAA.To16()); ok {
				rrs = append(rrs, netstack.RR{Name: h.Name, TTL: h.Ttl, Addr: a})
			}
		case *dns.CNAME:
			rrs = append(rrs, netstack.RR{Name: h.Name, TTL: h.Ttl, Target: r.Target})
			if v := f.judge(netstack.NameOf(r.Target)); v.Deny {
				return f.deny(b, m.Question[0], v, resolver, proto, "answer leads to a denied name")
			}
		}
	}
	if !f.trust(resolver, proto == "tcp") {
		// A resolver the program may be answering as: its answer passes,
		// and names nothing.
		f.untrusted.Do(func() {
			f.log.WithField("resolver", proto+":"+resolver.String()).Warn("dns: a local resolver that was not there before PROGRAM started, or that shares its address with one that was not: its answers name nothing (rules by name match load-time addresses only)")
		})
		return b
	}
	named := f.names.Observe(f.now(), m.Question[0].Name, rrs)
	if f.log.IsLevelEnabled(logrus.DebugLevel) {
		addrs := make([]string, 0, len(named))
		for a := range named {
			addrs = append(addrs, a.String())
		}
		f.log.WithFields(logrus.Fields{"name": netstack.NameOf(m.Question[0].Name), "qtype": dns.TypeToString[m.Question[0].Qtype],
			"rcode": dns.RcodeToString[m.Rcode], "addrs": fmt.Sprint(addrs), "resolver": proto + ":" + resolver.String()}).Debug("dns: answer")
	}
	return b
}

// udpFront is the UDP front of one resolver.
type udpFront struct {
	f        *Forwarder
	conn     *net.UDPConn
	addr     netip.AddrPort
	resolver netip.AddrPort

	peers front.Admitted

	mu   sync.Mutex
	ups  map[netip.AddrPort]*upstream // by the program socket's address
	done bool
}

type upstream struct {
	conn   *net.UDPConn
	last   time.Time
	cookie uint64 // the program socket's (front.Admission.Cookie)
}

func (f *Forwarder) newUDPFront(resolver netip.AddrPort) (*udpFront, error) {
	c, addr, err := front.ListenUDP(resolver.Addr())
	if err != nil {
		return nil, fmt.Errorf("dns front for udp:%s: %w", resolver, err)
	}
	fr := &udpFront{f: f, conn: c, addr: addr, resolver: resolver, ups: map[netip.AddrPort]*upstream{}}
	f.wg.Add(1)
	go fr.serve()
	return fr, nil
}

func (fr *udpFront) close() {
	fr.mu.Lock()
	fr.done = true
	for _, u := range fr.ups {
		u.conn.Close()
	}
	fr.mu.Unlock()
	fr.conn.Close()
}

// serve reads the program's queries and forwards each.
func (fr *udpFront) serve() {
	defer fr.f.wg.Done()
	front.ServeUDP(fr.conn, &fr.peers, func(b []byte, src netip.AddrPort, adm front.Admission) {
		reply, forward := fr.f.query(b, fr.resolver, "udp")
		if reply != nil {
			front.Reply(fr.conn, &fr.peers, reply, src)
		}
		if !forward {
			return
		}
		if u := fr.upstreamFor(src, adm); u != nil {
			u.conn.Write(b)
		}
	})
}

// upstreamFor returns the upstream socket of the program socket at src,
// made on its first query, by adm.Make (with the program's identity). A
// socket at an address an earlier one used (closed since, its port taken
// again, maybe under another user) gets an upstream of its own.
func (fr *udpFront) upstreamFor(src netip.AddrPort, adm front.Admission) *upstream {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	if fr.done {
		return nil
	}
	now := time.Now()
	if u := fr.ups[src]; u != nil {
		if u.cookie == adm.Cookie {
			u.last = now
			return u
		}
		delete(fr.ups, src)
		u.conn.Close()
	}
	if len(fr.ups) >= maxUpstreams {
		return nil
	}
	nc, err := front.Dial(context.Background(), adm.Make, "udp", netip.AddrPort{}, fr.resolver, 0) // with its zone
	if err != nil {
		return nil
	}
	c, ok := nc.(*net.UDPConn)
	if !ok {
		nc.Close()
		return nil
	}
	u := &upstream{conn: c, last: now, cookie: adm.Cookie}
	fr.ups[src] = u
	fr.f.wg.Add(1)
	go fr.relay(src, u)
	return u
}

// relay carries one upstream's answers back to the program socket at src,
// until it has been idle.
func (fr *udpFront) relay(src netip.AddrPort, u *upstream) {
	defer fr.f.wg.Done()
	defer func() {
		fr.mu.Lock()
		if fr.ups[src] == u {
			delete(fr.ups, src)
		}
		fr.mu.Unlock()
		u.conn.Close()
	}()
	buf := make([]byte, 65535)
	for {
		u.conn.SetReadDeadline(time.Now().Add(idle))
		n, err := u.conn.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				fr.mu.Lock()
				stale := time.Since(u.last) >= idle
				fr.mu.Unlock()
				if stale {
					return
				}
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // ECONNREFUSED from an ICMP error: the program sees silence
		}
		out := fr.f.answer(buf[:n], fr.resolver, "udp")
		front.Reply(fr.conn, &fr.peers, out, src)
	}
}

// tcpFront is the TCP front of one resolver.
type tcpFront struct {
	f        *Forwarder
	ln       *net.TCPListener
	addr     netip.AddrPort
	resolver netip.AddrPort
	conns    front.Conns
	peers    front.Admitted
}

func (f *Forwarder) newTCPFront(resolver netip.AddrPort) (*tcpFront, error) {
	ln, addr, err := front.ListenTCP(resolver.Addr())
	if err != nil {
		return nil, fmt.Errorf("dns front for tcp:%s: %w", resolver, err)
	}
	fr := &tcpFront{f: f, ln: ln, addr: addr, resolver: resolver}
	f.wg.Add(1)
	go front.Serve(ln, &f.wg, fr.relay)
	return fr, nil
}

// relay carries one program connection's queries to its own connection to
// the resolver, and the answers back, each a two-byte length and a message
// (RFC 1035 4.2.2).
func (fr *tcpFront) relay(c *net.TCPConn) {
	adm, ok := fr.peers.Take(c.RemoteAddr().(*net.TCPAddr).AddrPort(), true, 0)
	if !ok {
		c.SetLinger(0) // not a connection of the program's
		c.Close()
		return
	}
	fr.conns.Add(c, func() { c.Close() })
	defer fr.conns.Remove(c)
	defer c.Close()
	up, err := front.Dial(context.Background(), adm.Make, "tcp", netip.AddrPort{}, fr.resolver, 10*time.Second)
	if err != nil {
		c.SetLinger(0) // the resolver refused or never answered: so does this connection
		return
	}
	fr.conns.Add(up, func() { up.Close() })
	defer fr.conns.Remove(up)
	defer up.Close()
	var wmu sync.Mutex // the two directions both write to c
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			msg, err := readFrame(up)
			if err != nil {
				c.CloseWrite()
				return
			}
			out := fr.f.answer(msg, fr.resolver, "tcp")
			wmu.Lock()
			err = writeFrame(c, out)
			wmu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	for {
		msg, err := readFrame(c)
		if err != nil {
			up.(*net.TCPConn).CloseWrite()
			up.SetReadDeadline(time.Now().Add(drain))
			break
		}
		reply, forward := fr.f.query(msg, fr.resolver, "tcp")
		if reply != nil {
			wmu.Lock()
			err = writeFrame(c, reply)
			wmu.Unlock()
		}
		if forward && err == nil {
			err = writeFrame(up, msg)
		}
		if err != nil {
			break
		}
	}
	<-done
}

func readFrame(r io.Reader) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	b := make([]byte, int(l[0])<<8|int(l[1]))
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

func writeFrame(w io.Writer, b []byte) error {
	out := make([]byte, 2+len(b))
	out[0], out[1] = byte(len(b)>>8), byte(len(b))
	copy(out[2:], b)
	_, err := w.Write(out)
	return err
}
