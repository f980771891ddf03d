package sentry

import (
	"golang.org/x/sys/unix"

	"sandbox/sentry/relay"
)

// toFaultRelay points an allowed connect (or send) whose rule gives it
// faults at the relay's front for its destination (sentry/relay), which
// connects on and shapes the bytes. c.req keeps the destination: logs,
// the summary and learn show where the program connected. A connection the
// faults' toxicity spares is made directly: no relay, no cost.
func (s *Supervisor) toFaultRelay(c *call) {
	f := c.dec.Faults
	if f == nil || (c.domain != unix.AF_INET && c.domain != unix.AF_INET6) || !c.req.Addr.IsValid() {
		return
	}
	if c.typ != unix.SOCK_STREAM && c.typ != unix.SOCK_DGRAM {
		return
	}
	proto, err := unix.GetsockoptInt(c.sock, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	if err != nil || !(c.typ == unix.SOCK_DGRAM && proto == unix.IPPROTO_UDP || c.typ == unix.SOCK_STREAM && proto == unix.IPPROTO_TCP) {
		return
	}
	if relay.Spares(f) || !s.sameNetns(c) {
		return
	}
	s.relayOnce.Do(func() { s.relay = relay.New(s.cfg.Log) })
	if s.relay == nil {
		return // closing
	}
	front, err := s.relay.Front(c.req.Addr, c.typ == unix.SOCK_STREAM, f)
	if err != nil {
		s.cfg.Log.WithField("error", err).Warn("faults: cannot relay this connection; it is made without its faults")
		return
	}
	if b, ok := redirectSockaddr(c.domain, front); ok {
		c.alen = copy(c.addr[:], b)
	}
}
