package sentry

import (
	"net/netip"
	"os"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"sandbox/netstack"
	"sandbox/sentry/front"
	"sandbox/sentry/relay"
)

// toFaultRelay points an allowed connect (or send) whose rule gives it
// faults at the relay's front for its destination (sentry/relay), which
// connects on and shapes the bytes. c.req keeps the destination: logs,
// the summary and learn show where the program connected. A connection the
// faults' toxicity spares is made directly: no relay, no cost.
//
// onward, when valid, is where the relay connects on instead of the
// destination: the DNS forwarder's front, so that a resolver under faults
// is still observed and its denials still apply.
func (s *Supervisor) toFaultRelay(c *call, onward netip.AddrPort) {
	f := c.dec.Faults
	if f == nil {
		return
	}
	// What of the faults has a meaning on this protocol: a DEST of TCP and
	// UDP gives each its share.
	if c.typ == unix.SOCK_STREAM {
		f = f.For(netstack.TypeStream)
	} else {
		f = f.For(netstack.TypeDgram)
	}
	if c.domain == unix.AF_UNIX && c.typ == unix.SOCK_STREAM && c.req.Family == netstack.FamilyUnix {
		s.toUnixRelay(c, f)
		return
	}
	inet := (c.domain == unix.AF_INET || c.domain == unix.AF_INET6) && c.req.Addr.IsValid()
	proto := -1
	if inet && (c.typ == unix.SOCK_STREAM || c.typ == unix.SOCK_DGRAM) {
		proto, _ = unix.GetsockoptInt(c.sock, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	}
	if !(c.typ == unix.SOCK_DGRAM && proto == unix.IPPROTO_UDP || c.typ == unix.SOCK_STREAM && proto == unix.IPPROTO_TCP) {
		// Unix datagram and seqpacket sockets, SCTP, MPTCP, raw: connected
		// as they are. Said once: a rule's faults that never apply are a
		// surprise.
		s.faultsUnsupported.Do(func() {
			s.cfg.Log.WithFields(logrus.Fields{"dst": c.req.Dest(), "type": c.req.Type.String(), "rule": c.dec.Rule}).
				Warn("faults: this kind of socket is not relayed (faults apply to TCP, UDP and Unix streams); connected without them")
		})
		return
	}
	adm, ok := s.relayable(c, f)
	if !ok {
		return
	}
	peer, why := frontPeer(c)
	if why != "" {
		s.faultsNoFront.Do(func() {
			s.cfg.Log.WithFields(logrus.Fields{"dst": c.req.Dest(), "rule": c.dec.Rule, "why": why}).
				Warn("faults: a socket the relay cannot carry (curl --interface binds this way) is connected as it is, without its faults")
		})
		return
	}
	s.relayOnce.Do(func() { s.relay = relay.New(s.cfg.Log) })
	if s.relay == nil {
		return // closing
	}
	dest, stream := c.req.Addr, c.typ == unix.SOCK_STREAM
	var admit relay.Admit
	if onward.IsValid() {
		// The DNS forwarder's front, which answers only the sockets it
		// is told of: the relay's own.
		dest = onward
		resolver := c.req.Addr
		// The relay's onward sockets are the program's too, and so are
		// the forwarder's upstreams for them.
		admit = func(p netip.AddrPort, cookie uint64, mk front.Maker) {
			s.dns.Front(resolver, stream, p, front.Admission{Make: mk, Cookie: cookie})
		}
	}
	front, err := s.relay.Front(dest, stream, f, peer, adm, admit)
	if err != nil {
		s.cfg.Log.WithField("error", err).Warn("faults: cannot relay this connection; it is made without its faults")
		return
	}
	if b, ok := redirectSockaddr(c.domain, front); ok {
		c.alen = copy(c.addr[:], b)
	}
}

// relayable reports whether c's connection is relayed with its share of
// faults f, and how the relay is to carry it: not when f does nothing to
// it (empty, or spared by its toxicity), when its socket lives in another
// network namespace than the relay's fronts, or when no front can carry
// it as its own (admission).
func (s *Supervisor) relayable(c *call, f *netstack.Faults) (front.Admission, bool) {
	if relay.Spares(f) || !s.sameNetns(c) {
		return front.Admission{}, false
	}
	return s.admission(c)
}

// toUnixRelay relays a Unix stream connect. The onward connection is made
// first, here, exactly as the program's own would be (the opened socket
// file, as the caller): if it fails, nothing is relayed and the program's
// connect meets the same failure itself. Only an onward connection that is
// up is handed to the relay, and the program's socket is connected to that
// connection's own abstract front.
func (s *Supervisor) toUnixRelay(c *call, f *netstack.Faults) {
	adm, ok := s.relayable(c, f)
	if !ok {
		return
	}
	mk := adm.Make
	if mk == nil {
		mk = plainSocket
	}
	up, err := mk(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK)
	if err != nil {
		return
	}
	own := c.sock
	c.sock = up
	e := s.connectOnce(c)
	c.sock = own
	if e != 0 {
		unix.Close(up) // refused, not permitted, a full backlog: the program's own connect says so
		return
	}
	s.relayOnce.Do(func() { s.relay = relay.New(s.cfg.Log) })
	if s.relay == nil {
		unix.Close(up)
		return
	}
	sa, err := s.relay.FrontUnix(os.NewFile(uintptr(up), "relay"), f)
	if err != nil {
		s.cfg.Log.WithField("error", err).Warn("faults: cannot relay this connection; it is made without its faults")
		return
	}
	if c.unix != nil {
		c.unix.close()
		c.unix = nil
	}
	c.alen = copy(c.addr[:], sa)
}
