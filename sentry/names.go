package sentry

import (
	"net"
	"net/netip"
	"strconv"
	"time"

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
func (s *Supervisor) toResolverFront(c *call) (front netip.AddrPort) {
	if s.dns == nil || c.req.Addr.Port() != 53 || c.dec.Self || c.dec.Rule == selfRule {
		return
	}
	if (c.domain != unix.AF_INET && c.domain != unix.AF_INET6) || (c.typ != unix.SOCK_DGRAM && c.typ != unix.SOCK_STREAM) {
		return
	}
	// UDP and TCP only (not UDP-Lite, SCTP or MPTCP, which the fronts do
	// not speak).
	proto, err := unix.GetsockoptInt(c.sock, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	if err != nil || !(c.typ == unix.SOCK_DGRAM && proto == unix.IPPROTO_UDP || c.typ == unix.SOCK_STREAM && proto == unix.IPPROTO_TCP) {
		return
	}
	if !s.sameNetns(c) || s.tree.owns(c) {
		return
	}
	adm, ok := s.admission(c)
	if !ok {
		return
	}
	peer, ok := frontPeer(c)
	if !ok {
		return
	}
	fr, err := s.dns.Front(c.req.Addr, c.typ == unix.SOCK_STREAM, peer, adm)
	if err != nil {
		s.frontFailed.Do(func() {
			s.cfg.Log.WithField("error", err).Warn("dns: cannot observe lookups (their names stay unknown; rules by name match load-time addresses only)")
		})
		return
	}
	if b, ok := redirectSockaddr(c.domain, fr); ok {
		c.alen = copy(c.addr[:], b)
		return fr
	}
	return
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
