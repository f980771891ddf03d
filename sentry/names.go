package sentry

import (
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"sandbox/netstack"
	"sandbox/sentry/dnsfwd"
)

// Names that follow the program's DNS (see docs/design.md, "Names that
// follow the program's DNS"). An allowed connect or send to port 53 of a
// resolver is performed to the forwarder's front for that resolver instead
// (sentry/dnsfwd), which forwards the lookup unchanged and records the
// answer's names before the program reads it. Every inet decision then
// carries the names its address was returned for (Request.Names), which
// rules by name match and logs show.
//
// The answers the tree gives itself name nothing: a lookup is observed only
// when the resolver is not the tree's own socket. Otherwise a program could
// run a resolver, answer its own lookup of an allowed name with any address
// and connect there. A socket in another network namespace than the
// supervisor's cannot reach the front, and is connected as asked, unobserved.

// newForwarder starts the DNS forwarder when the configuration asks for it.
func newForwarder(cfg Config) *dnsfwd.Forwarder {
	if !cfg.ObserveDNS || cfg.Names == nil {
		return nil
	}
	judge := func(string) netstack.QueryVerdict { return netstack.QueryVerdict{} }
	denies := false
	if q, ok := cfg.Decider.(interface {
		DecideQuery(string) netstack.QueryVerdict
		DeniesLookups() bool
	}); ok {
		judge, denies = q.DecideQuery, q.DeniesLookups()
	}
	return dnsfwd.New(cfg.Names, judge, denies, newResolverTrust().trusted, cfg.Log)
}

// resolverTrust decides whose answers may name addresses. The principle: a
// name is vouched for only by a resolver the sandboxed program cannot be
// answering as. A resolver at a remote address qualifies (the program cannot
// send from that address: raw sockets are off unless --raw-sockets). A
// resolver at a local address qualifies only while every socket that could
// answer as it (bound to its address or to the wildcard, on its port and
// protocol) existed before PROGRAM started. Who holds a socket proves
// nothing: a socket in flight in SCM_RIGHTS is held by no one, and a
// listener can be closed once it accepted; when it was made does.
type resolverTrust struct {
	before map[uint64]bool     // cookies of the port-53 sockets at start
	local  map[netip.Addr]bool // the namespace's own addresses at start
}

func newResolverTrust() *resolverTrust {
	t := &resolverTrust{before: map[uint64]bool{}, local: map[netip.Addr]bool{}}
	for _, s := range portSockets(53) {
		t.before[s.cookie] = true
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				t.local[p.Addr().Unmap().WithZone("")] = true
			}
		}
	}
	return t
}

// portSockets lists the UDP sockets and TCP listeners of both families on
// port, with their protocol in family's place (IPPROTO_UDP, IPPROTO_TCP).
func portSockets(port uint16) []inetSock {
	fd, err := getInetDiag()
	if err != nil {
		return nil
	}
	defer unix.Close(fd)
	var out []inetSock
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		before := len(out)
		out, _ = diagInet(fd, fam, unix.IPPROTO_UDP, ^uint32(0), port, out)
		for i := before; i < len(out); i++ {
			out[i].family = unix.IPPROTO_UDP
		}
	}
	before := len(out)
	out, _ = diagInet(fd, unix.AF_UNSPEC, unix.IPPROTO_TCP, 1<<tcpListen, port, out)
	for i := before; i < len(out); i++ {
		out[i].family = unix.IPPROTO_TCP
	}
	return out
}

func (t *resolverTrust) trusted(r netip.AddrPort, stream bool) bool {
	a := r.Addr().Unmap().WithZone("")
	if !a.IsLoopback() && !t.local[a] {
		return true
	}
	proto := uint8(unix.IPPROTO_UDP)
	if stream {
		proto = unix.IPPROTO_TCP
	}
	found := false
	for _, s := range portSockets(r.Port()) {
		b := s.addr.Unmap()
		if s.family != proto || (b != a && !b.IsUnspecified()) {
			continue
		}
		if !t.before[s.cookie] {
			return false
		}
		found = true
	}
	return found
}

// nameRequest gives an inet request the names its address is known by.
func (s *Supervisor) nameRequest(c *call) {
	if s.names.Empty() || !c.req.Addr.IsValid() {
		return
	}
	if f := c.req.Family; f == netstack.FamilyInet || f == netstack.FamilyInet6 {
		c.req.Names, c.req.Looked = s.names.Lookup(c.req.Addr.Addr(), time.Now())
	}
}

// toResolverFront points an allowed call to a resolver (port 53, UDP or
// TCP) at the forwarder's front for it, and returns that front (invalid if
// none). c.req keeps the resolver: logs, the summary and learn show where
// the program sent its lookup.
//
// It reports false when the call must not be made at all: the policy
// denies some lookups, and this one cannot go through a front (a socket
// bound without a port, UDP-Lite or SCTP, another network namespace, a
// socket made with other credentials, a front that is full), so it would
// reach the resolver unjudged. c.dec is then a denial (unobservedRule).
// When no lookup is denied, such a call is made as it is: its answers name
// nothing, which fails closed for rules by name.
func (s *Supervisor) toResolverFront(c *call) (netip.AddrPort, bool) {
	if s.dns == nil || c.req.Addr.Port() != 53 || c.dec.Self || c.dec.Rule == selfRule {
		return netip.AddrPort{}, true
	}
	if c.domain != unix.AF_INET && c.domain != unix.AF_INET6 {
		return netip.AddrPort{}, true
	}
	fr, why := s.resolverFront(c)
	if fr.IsValid() || why == "" {
		return fr, true
	}
	if !s.dns.Denies() {
		s.frontFailed.Do(func() {
			s.cfg.Log.WithFields(logrus.Fields{"dst": c.req.Dest(), "why": why}).Warn("dns: a lookup the forwarder cannot see: its answers name nothing (rules by name match load-time addresses only)")
		})
		return netip.AddrPort{}, true
	}
	s.unobservedDenied.Do(func() {
		s.cfg.Log.WithFields(logrus.Fields{"dst": c.req.Dest(), "why": why}).Warn("dns: lookups the forwarder cannot see are denied, since the policy denies some names and they would reach the resolver unjudged")
	})
	c.dec = netstack.Decision{Action: netstack.Deny, Reason: netstack.ReasonAccess, Rule: unobservedRule}
	return netip.AddrPort{}, false
}

// unobservedRule is the rule a lookup that cannot be observed is denied by
// (toResolverFront).
const unobservedRule = "(a lookup the DNS forwarder cannot see, while the policy denies names)"

// resolverFront is toResolverFront's search for a front: the front, or why
// there is none ("" when the call is not a lookup to observe: the tree's
// own resolver).
func (s *Supervisor) resolverFront(c *call) (netip.AddrPort, string) {
	if c.typ != unix.SOCK_DGRAM && c.typ != unix.SOCK_STREAM {
		return netip.AddrPort{}, "not a datagram or stream socket"
	}
	// UDP and TCP; MPTCP falls back to TCP against the front's listener.
	// Not UDP-Lite or SCTP, which the fronts do not speak.
	proto, err := unix.GetsockoptInt(c.sock, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	if err != nil || !(c.typ == unix.SOCK_DGRAM && proto == unix.IPPROTO_UDP ||
		c.typ == unix.SOCK_STREAM && (proto == unix.IPPROTO_TCP || proto == unix.IPPROTO_MPTCP)) {
		return netip.AddrPort{}, "a protocol the forwarder does not speak"
	}
	if s.tree.owns(c) {
		return netip.AddrPort{}, "" // the tree's own resolver: nothing to observe
	}
	if !s.sameNetns(c) {
		return netip.AddrPort{}, "a socket in another network namespace"
	}
	adm, ok := s.admission(c)
	if !ok {
		return netip.AddrPort{}, "a socket made with other credentials than its caller's"
	}
	peer, why := frontPeer(c)
	if why != "" {
		return netip.AddrPort{}, why
	}
	fr, err := s.dns.Front(c.req.Addr, c.typ == unix.SOCK_STREAM, peer, adm)
	if err != nil {
		return netip.AddrPort{}, err.Error()
	}
	b, ok := redirectSockaddr(c.domain, fr)
	if !ok {
		return netip.AddrPort{}, "no address for the front"
	}
	c.alen = copy(c.addr[:], b)
	return fr, ""
}

// sameNetns reports whether c's socket lives in the supervisor's network
// namespace, where the fronts are: SIOCGSKNS names the socket's own (it
// needs CAP_NET_ADMIN); without it, the caller's current one stands in (a
// caller without that capability cannot have made a namespace either).
func (s *Supervisor) sameNetns(c *call) bool {
	var st unix.Stat_t
	if fd, err := unix.IoctlRetInt(c.sock, unix.SIOCGSKNS); err == nil {
		err = unix.Fstat(fd, &st)
		unix.Close(fd)
		return err == nil && st.Ino == s.netns.Ino && st.Dev == s.netns.Dev
	}
	if err := unix.Stat("/proc/"+strconv.Itoa(int(c.n.Pid))+"/ns/net", &st); err != nil {
		return false
	}
	return st.Ino == s.netns.Ino && st.Dev == s.netns.Dev
}

// Use is one decided call, as Config.Observe receives it.
type Use struct {
	Req     netstack.Request // with Names
	Action  netstack.Action
	Self    bool   // allowed as the tree's own socket
	Rule    string // the deciding rule, "" for the default
	PID     int    // the calling thread
	Comm    string // its comm at the call
	Syscall string
	At      time.Time
}
