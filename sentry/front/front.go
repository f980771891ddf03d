// Package front holds what the supervisor's loopback fronts share: the DNS
// forwarder's (sentry/dnsfwd) and the fault relay's (sentry/relay). A
// front is a socket on loopback that a program's connection is pointed at
// instead of its destination; it accepts, and carries the connection on.
package front

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Loopback is the loopback address of a's family: the front for a
// destination is reached the way the destination would be (an IPv6 socket
// reaches an IPv4 front at ::ffff:127.0.0.1).
func Loopback(a netip.Addr) netip.Addr {
	if a.Unmap().Is4() {
		return netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	return netip.IPv6Loopback()
}

// ListenTCP opens a TCP front on loopback for a destination of a's family.
func ListenTCP(a netip.Addr) (*net.TCPListener, netip.AddrPort, error) {
	ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(Loopback(a), 0)))
	if err != nil {
		return nil, netip.AddrPort{}, err
	}
	return ln, ln.Addr().(*net.TCPAddr).AddrPort(), nil
}

// ListenUDP opens a UDP front on loopback for a destination of a's family.
func ListenUDP(a netip.Addr) (*net.UDPConn, netip.AddrPort, error) {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(Loopback(a), 0)))
	if err != nil {
		return nil, netip.AddrPort{}, err
	}
	return c, c.LocalAddr().(*net.UDPAddr).AddrPort(), nil
}

// Serve accepts on ln until it is closed, and carries each connection in a
// goroutine of its own; wg counts them, and Serve itself (the caller adds
// Serve's one).
func Serve(ln *net.TCPListener, wg *sync.WaitGroup, carry func(*net.TCPConn)) {
	defer wg.Done()
	for {
		c, err := ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // a connection reset before it was accepted, EMFILE: go on
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			carry(c)
		}()
	}
}

// ServeUDP reads datagrams on c until it is closed and hands those of
// admitted sources to handle, with their admission (b is reused by the
// next read).
func ServeUDP(c *net.UDPConn, peers *Admitted, handle func(b []byte, src netip.AddrPort, a Admission)) {
	buf := make([]byte, 65535)
	for {
		n, src, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if a, ok := peers.Take(src, false, UDPAdmission); ok { // else not a socket this front was made for
			handle(buf[:n], src, a)
		}
	}
}

// Conns is what a front's Close must end: each connection being carried,
// with the function that ends it.
type Conns struct {
	mu sync.Mutex
	m  map[any]func()
}

// Add registers k, ended by end.
func (s *Conns) Add(k any, end func()) {
	s.mu.Lock()
	if s.m == nil {
		s.m = map[any]func(){}
	}
	s.m[k] = end
	s.mu.Unlock()
}

// Remove forgets k.
func (s *Conns) Remove(k any) {
	s.mu.Lock()
	delete(s.m, k)
	s.mu.Unlock()
}

// EndAll ends every connection registered (outside the lock: an end may
// make its connection's goroutines call Remove).
func (s *Conns) EndAll() {
	s.mu.Lock()
	ends := make([]func(), 0, len(s.m))
	for _, end := range s.m {
		ends = append(ends, end)
	}
	s.mu.Unlock()
	for _, end := range ends {
		end()
	}
}

// Range calls fn once per connection registered (for tests and counts).
func (s *Conns) Range(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range s.m {
		fn()
	}
}

// Admitted is the set of program sockets a front serves, by the address
// the front sees them at: a front on loopback is reachable by every process
// of the namespace, and must not carry anyone else's connection to its
// destination (another sandbox's, denied there).
//
// An admission also says how the program's socket is to be carried
// (Admission).
type Admitted struct {
	mu     sync.Mutex
	m      map[netip.AddrPort]admission
	pruned time.Time
}

// Admission is how a front carries one program socket.
type Admission struct {
	// As is where the replies to an unconnected UDP socket come from: the
	// destination as the program addressed it (see Reply). Invalid: from
	// the front itself (a connected socket takes datagrams from its peer
	// only).
	As netip.AddrPort
	// Make makes the onward socket with the program's identity (nil: the
	// supervisor's own, the same).
	Make Maker
	// Cookie is the program socket's SO_COOKIE: a reply written as As goes
	// only to the socket that still has it (see Reply).
	Cookie uint64
}

type admission struct {
	until time.Time
	Admission
}

// UDPAdmission is how long a UDP socket stays admitted after its last
// datagram (or the call that admitted it).
const UDPAdmission = 2 * time.Minute

// maxAdmitted bounds the set: past it (live entries only), new sockets
// are not admitted, and their calls are made without a front.
const maxAdmitted = 4096

// Admit admits p until the given time, carried as adm says; false when
// the set is full. The latest call for p decides.
func (a *Admitted) Admit(p netip.AddrPort, until time.Time, adm Admission) bool {
	p = unmap(p)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[netip.AddrPort]admission{}
	}
	now := time.Now()
	if _, ok := a.m[p]; !ok && len(a.m) >= maxAdmitted && now.Sub(a.pruned) >= time.Second {
		a.pruned = now // at most one walk a second
		for k, t := range a.m {
			if t.until.Before(now) {
				delete(a.m, k)
			}
		}
	}
	if _, ok := a.m[p]; !ok && len(a.m) >= maxAdmitted {
		return false
	}
	a.m[p] = admission{until, adm}
	return true
}

// Take reports whether p is admitted, and how. once ends a one-shot
// admission (a TCP connection); refresh, if not zero, extends a standing
// one (a UDP socket, for as long as it keeps sending).
func (a *Admitted) Take(p netip.AddrPort, once bool, refresh time.Duration) (Admission, bool) {
	p = unmap(p)
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.m[p]
	now := time.Now()
	ok = ok && now.Before(t.until)
	switch {
	case once:
		delete(a.m, p)
	case ok && refresh > 0:
		t.until = now.Add(refresh)
		a.m[p] = t
	}
	if !ok {
		return Admission{}, false
	}
	return t.Admission, true
}

// admissionOf is p's admission (zero if none).
func (a *Admitted) admissionOf(p netip.AddrPort) Admission {
	p = unmap(p)
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.m[p].Admission
}

func unmap(p netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(p.Addr().Unmap(), p.Port()) }

// Reply sends b from the front c to the program socket at dst, from the
// address dst's admission names when there is one (see spoof.go), else
// from c. A reply as another address is written only if the socket that
// would receive it is still the admitted one (its cookie): a port the
// program closed and another process bound since gets nothing. (Without
// raw sockets it comes from the front, which such programs ignore.)
func Reply(c *net.UDPConn, peers *Admitted, b []byte, dst netip.AddrPort) {
	if adm := peers.admissionOf(dst); adm.As.IsValid() {
		if sp := spoofer(); sp != nil {
			if sp.receives(adm.As, dst, adm.Cookie) {
				sp.send(adm.As, dst, b)
			}
			return
		}
	}
	c.WriteToUDPAddrPort(b, dst)
}

// FreePort returns a loopback port of network ("tcp" or "udp") that
// nothing uses now. The relay picks the port of an onward socket with it
// when the destination (a DNS front) must be told of it beforehand; a race
// with another process taking it meanwhile fails that one connection.
func FreePort(network string) (netip.AddrPort, error) {
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return netip.AddrPort{}, err
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).AddrPort(), nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return netip.AddrPort{}, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).AddrPort(), nil
}
