// Package relay carries the connections that a policy gives faults to
// (netstack.Faults): the program's socket is connected to a front on
// loopback, and the relay connects on to the real destination and shapes
// the bytes between them, as Toxiproxy's toxics would, on an unmodified
// program.
//
// One front per destination and fault set: a TCP listener, or a UDP socket
// with an upstream socket per program socket. A connection without faults,
// or that its toxicity spares, is never relayed: it costs nothing.
//
// What a fault looks like to the program, and its real twin:
//   - reset: the program's side is closed with SO_LINGER 0, so the kernel
//     sends an RST and the program's next call gets ECONNRESET (iptables
//     REJECT --reject-with tcp-reset after the handshake);
//   - blackhole: the relay stops reading that direction, so the sender's
//     buffers fill and its reads time out (a DROP after the handshake);
//     nothing from a blackholed peer reaches the program, its FIN and RST
//     included; on UDP every datagram that way is dropped;
//   - latency, bandwidth, slice: each chunk is delayed, paced (x/time/rate)
//     or cut, as tc netem's delay and rate would show it;
//   - limit: the peer's side closes (a FIN) after N bytes;
//   - slow-close: the FIN after the peer's is delayed;
//   - loss, duplicate, latency, bandwidth on UDP: per datagram (bandwidth
//     paces them, as an htb class queues them).
//
// A fault with no meaning on the socket's protocol (reset on UDP, loss on
// TCP: netstack.Faults.For) is not applied to it.
//
// The onward socket binds the program socket's address when the program
// bound one (onwardSource): the peer sees the source it would natively.
package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
	"golang.org/x/time/rate"

	"sandbox/netstack"
	"sandbox/sentry/front"
)

// Relay owns the fronts. Safe for concurrent use.
type Relay struct {
	log *logrus.Logger

	mu  sync.Mutex
	tcp map[key]*tcpFront
	udp map[key]*udpFront
	// unixConns: Unix connections, each with its own one-shot front.
	unixConns front.Conns
	closed    bool
	wg        sync.WaitGroup
	// ctx ends onward dials at Close.
	ctx    context.Context
	cancel context.CancelFunc
}

type key struct {
	dest   netip.AddrPort
	faults *netstack.Faults
}

// New returns an empty relay.
func New(log *logrus.Logger) *Relay {
	ctx, cancel := context.WithCancel(context.Background())
	return &Relay{log: log, tcp: map[key]*tcpFront{}, udp: map[key]*udpFront{}, ctx: ctx, cancel: cancel}
}

// Spares reports whether the faults' toxicity spares this connection: it
// is then made directly.
func Spares(f *netstack.Faults) bool {
	return !f.Active() || f.Toxicity < 1 && rand.Float64() >= f.Toxicity
}

// Front returns the loopback address to connect (or send) to instead of
// dest, for a connection that suffers f, made by the program socket the
// front will see at peer (its bound port, on loopback or its bound
// address): only it is carried.
//
// adm says how peer is carried: where the datagrams to an unconnected
// socket come from (front.Reply), and who makes the onward socket (the
// program's identity, front.Maker).
//
// admit, if not nil, is told the address of each onward socket before it
// is used: a destination that is itself a front (the DNS forwarder's)
// admits it.
func (r *Relay) Front(dest netip.AddrPort, stream bool, f *netstack.Faults, peer netip.AddrPort, adm front.Admission, admit Admit) (netip.AddrPort, error) {
	// The zone stays: a link-local destination is reached through it.
	dest = netip.AddrPortFrom(dest.Addr().Unmap(), dest.Port())
	peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
	// Only what has a meaning on the protocol: a DEST that covers TCP
	// and UDP gives each its own share (For keeps one pointer per share).
	if stream {
		f = f.For(netstack.TypeStream)
	} else {
		f = f.For(netstack.TypeDgram)
	}
	k := key{dest, f}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return netip.AddrPort{}, errors.New("relay closed")
	}
	if stream {
		if fr := r.tcp[k]; fr != nil {
			if !fr.peers.Admit(peer, time.Now().Add(time.Minute), adm) {
				return netip.AddrPort{}, errors.New("a front serves at most 4096 sockets at once")
			}
			return fr.addr, nil
		}
		ln, addr, err := front.ListenTCP(dest.Addr())
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("relay front for tcp:%s: %w", dest, err)
		}
		fr := &tcpFront{r: r, ln: ln, addr: addr, dest: dest, f: f, admit: admit}
		if !fr.peers.Admit(peer, time.Now().Add(time.Minute), adm) {
			return netip.AddrPort{}, errors.New("a front serves at most 4096 sockets at once")
		}
		r.tcp[k] = fr
		r.wg.Add(1)
		go front.Serve(ln, &r.wg, fr.carry)
		return fr.addr, nil
	}
	if fr := r.udp[k]; fr != nil {
		if !fr.peers.Admit(peer, time.Now().Add(front.UDPAdmission), adm) {
			return netip.AddrPort{}, errors.New("a front serves at most 4096 sockets at once")
		}
		return fr.addr, nil
	}
	c, addr, err := front.ListenUDP(dest.Addr())
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("relay front for udp:%s: %w", dest, err)
	}
	fr := &udpFront{r: r, conn: c, addr: addr, dest: dest, f: f, admit: admit, ups: map[netip.AddrPort]*upstream{}}
	if !fr.peers.Admit(peer, time.Now().Add(front.UDPAdmission), adm) {
		return netip.AddrPort{}, errors.New("a front serves at most 4096 sockets at once")
	}
	r.udp[k] = fr
	r.wg.Add(1)
	go fr.serve()
	return fr.addr, nil
}

// Admit, when a relay's destination is itself a front (the DNS
// forwarder's), admits each onward socket there before it is used: its
// address, its SO_COOKIE (0 for TCP, admitted before it exists: a TCP
// front takes each admission once), and mk, the Maker of the program
// socket it carries, so that what the destination opens in turn is that
// program's too.
type Admit func(onward netip.AddrPort, cookie uint64, mk front.Maker)

// Close stops every front and connection and waits for them.
func (r *Relay) Close() {
	r.cancel()
	r.mu.Lock()
	r.closed = true
	for _, fr := range r.tcp {
		fr.ln.Close()
		fr.conns.EndAll()
	}
	for _, fr := range r.udp {
		fr.close()
	}
	r.unixConns.EndAll()
	r.mu.Unlock()
	r.wg.Wait()
}

type tcpFront struct {
	r     *Relay
	ln    *net.TCPListener
	addr  netip.AddrPort
	dest  netip.AddrPort
	f     *netstack.Faults
	conns front.Conns
	peers front.Admitted
	admit Admit
}

// stream is either side of a relayed connection: *net.TCPConn or
// *net.UnixConn.
type stream interface {
	net.Conn
	CloseWrite() error
}

// conn is one relayed connection: the program's side (prog) and the
// destination's (peer).
type conn struct {
	f          *netstack.Faults
	prog, peer stream
	passed     atomic.Int64 // bytes read for relaying, both ways
	down       atomic.Int64 // bytes read from the peer
	once       sync.Once
	done       chan struct{}
	upDone     chan struct{} // closed when the up direction ends
}

func newConn(f *netstack.Faults, prog, peer stream) *conn {
	return &conn{f: f, prog: prog, peer: peer, done: make(chan struct{}), upDone: make(chan struct{})}
}

// reset ends the connection as a reset shows to the program: an RST for
// TCP (SO_LINGER 0); for a Unix stream, the close of a peer that leaves
// what the program sent unread, which unix_release_sock reports to it as
// ECONNRESET (and as end of file when nothing was left unread, as a real
// peer's close would).
func (c *conn) reset() {
	c.once.Do(func() {
		if t, ok := c.prog.(*net.TCPConn); ok {
			t.SetLinger(0)
		}
		c.prog.Close()
		c.peer.Close()
		close(c.done)
	})
}

// abort makes dst's close a reset: what its side sees of a reset from the
// other side.
func (c *conn) abort(dst stream) {
	if t, ok := dst.(*net.TCPConn); ok {
		t.SetLinger(0)
	}
}

// hungUp reports, without reading anything, whether the other end of s
// is gone (POLLHUP, POLLERR: closed both ways, or reset) or has only
// half-closed (POLLRDHUP).
func hungUp(s stream) (gone, half bool) {
	rc, err := s.(syscall.Conn).SyscallConn()
	if err != nil {
		return true, true
	}
	rc.Control(func(fd uintptr) {
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
		if n, err := unix.Poll(p, 0); err == nil && n > 0 {
			gone = p[0].Revents&(unix.POLLHUP|unix.POLLERR) != 0
			half = p[0].Revents&unix.POLLRDHUP != 0
		}
	})
	return gone, half
}

// end closes both sides normally.
func (c *conn) end() {
	c.once.Do(func() {
		c.prog.Close()
		c.peer.Close()
		close(c.done)
	})
}

func (fr *tcpFront) carry(prog *net.TCPConn) {
	adm, ok := fr.peers.Take(prog.RemoteAddr().(*net.TCPAddr).AddrPort(), true, 0)
	if !ok {
		prog.SetLinger(0) // not a connection this front was made for
		prog.Close()
		return
	}
	fr.conns.Add(prog, func() { prog.Close() })
	defer fr.conns.Remove(prog)
	// The program socket's own address, as the front sees it: the
	// onward socket leaves from it.
	local := onwardSource(prog.RemoteAddr().(*net.TCPAddr).AddrPort().Addr(), fr.dest.Addr())
	if fr.admit != nil {
		// The destination admits only the ports it was told of: pick one.
		var err error
		if local, err = front.FreePort("tcp"); err != nil {
			prog.SetLinger(0)
			prog.Close()
			return
		}
		local = netip.AddrPortFrom(front.Loopback(fr.dest.Addr()), local.Port())
		fr.admit(local, 0, adm.Make)
	}
	up, err := front.Dial(fr.r.ctx, adm.Make, "tcp", local, fr.dest, 2*time.Minute)
	if err != nil {
		// The destination refused or never answered: so does the program's
		// connection, as it would have had it been made directly.
		prog.SetLinger(0)
		prog.Close()
		return
	}
	c := newConn(fr.f, prog, up.(*net.TCPConn))
	fr.conns.Add(c, c.end)
	defer fr.conns.Remove(c)
	c.start()
}

// start applies the faults of the connection's start, then runs it.
func (c *conn) start() {
	if c.f.ResetTime > 0 {
		t := time.AfterFunc(c.f.ResetTime, c.reset)
		defer t.Stop()
	}
	if c.f.ConnectLatency > 0 {
		select {
		case <-time.After(c.f.ConnectLatency):
		case <-c.done:
		}
	}
	c.run()
}

// run carries the connection until both directions ended.
func (c *conn) run() {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); defer close(c.upDone); c.pump(netstack.Up, c.prog, c.peer) }()
	go func() { defer wg.Done(); c.pump(netstack.Down, c.peer, c.prog) }()
	wg.Wait()
	c.end()
}

// pump carries one direction, from src to dst, with the direction's faults.
func (c *conn) pump(dir int, src, dst stream) {
	f := c.f
	if f.Blackhole[dir] {
		c.hold(dir)
		return
	}
	w := c.newWriter(dir, dst)
	defer w.close()
	buf := make([]byte, w.chunk)
	_, unixProg := c.prog.(*net.UnixConn)
	for {
		var n int
		var err error
		if unixProg && dir == netstack.Up && f.ResetBytes >= 0 {
			// Only what fits under the count is taken: the rest must stay
			// unread for the close to show as ECONNRESET.
			n, err = readUpTo(src, buf, f.ResetBytes-c.passed.Load())
		} else {
			n, err = src.Read(buf)
		}
		if n > 0 {
			b := buf[:n]
			if f.ResetBytes >= 0 {
				prev := c.passed.Add(int64(n)) - int64(n)
				if prev+int64(n) > f.ResetBytes {
					// What fits under the count is delivered, then the RST.
					w.put(b[:max(f.ResetBytes-prev, 0)])
					w.close()
					c.reset()
					return
				}
			}
			if dir == netstack.Down && f.Limit >= 0 {
				prev := c.down.Add(int64(n)) - int64(n)
				if prev+int64(n) >= f.Limit {
					w.put(b[:max(f.Limit-prev, 0)])
					w.close()
					c.end() // the peer's FIN, after N bytes
					return
				}
			}
			if !w.put(b) {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				if errors.Is(err, syscall.ECONNRESET) {
					c.abort(dst) // a reset passes on as a reset
				}
				c.end()
				return
			}
			w.close() // everything read is delivered before the FIN
			if dir == netstack.Down && f.SlowClose > 0 {
				select {
				case <-time.After(f.SlowClose):
				case <-c.done:
				}
			}
			dst.CloseWrite()
			return
		}
	}
}

// hold is a blackholed direction: nothing is read, so the sender's data
// stays in its buffers, as after a DROP. Only the program's end is watched
// for, once a second, so that a program that gave up does not leave the
// connection behind: it ends once the program's side is gone (closed or
// reset), or closed for writing with nothing of it still on its way up. A
// blackholed peer's end never shows, its FIN and RST included (a DROP of
// its packets drops them too): the program's side stays open until the
// program closes it, or the relay closes.
func (c *conn) hold(dir int) {
	f := c.f
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		gone, half := hungUp(c.prog)
		if half && !gone {
			// The program's FIN: lost in a blackhole up, where the other
			// direction goes on; else it ends the connection once what
			// came before it was delivered (the up direction ended).
			switch {
			case dir == netstack.Up:
				half = f.Blackhole[netstack.Down]
			case !f.Blackhole[netstack.Up]:
				select {
				case <-c.upDone:
				default:
					half = false
				}
			}
		}
		if gone || half {
			c.end()
			return
		}
	}
}

// writer delivers one direction's chunks with its latency (each chunk its
// delay after it was read, so that a stream is delayed, not slowed, as
// netem's delay does), pacing and slicing.
type writer struct {
	c     *conn
	dir   int
	dst   stream
	lim   *rate.Limiter
	chunk int
	q     chan piece // with latency: chunks waiting for their time
	idle  chan struct{}
	once  sync.Once
}

type piece struct {
	b  []byte
	at time.Time
}

func (c *conn) newWriter(dir int, dst stream) *writer {
	w := &writer{c: c, dir: dir, dst: dst, chunk: 32 << 10}
	if bw := c.f.Bandwidth[dir]; bw > 0 {
		w.lim = rate.NewLimiter(rate.Limit(bw), int(min(bw, 16<<10)))
		w.chunk = min(w.chunk, w.lim.Burst())
	}
	if c.f.Latency[dir] > 0 {
		w.q, w.idle = make(chan piece, 64), make(chan struct{})
		go w.drain()
	}
	return w
}

// put delivers b, or queues a copy of it for its time; false once the
// connection is gone.
func (w *writer) put(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	if w.q == nil {
		return w.write(b)
	}
	d := w.c.f.Latency[w.dir]
	if j := w.c.f.Jitter[w.dir]; j > 0 {
		d += time.Duration(rand.Int64N(int64(2*j))) - j
	}
	select {
	case w.q <- piece{append([]byte(nil), b...), time.Now().Add(max(d, 0))}:
		return true
	case <-w.c.done:
		return false
	}
}

// close waits until everything queued is delivered (or the connection is
// gone).
func (w *writer) close() {
	w.once.Do(func() {
		if w.q != nil {
			close(w.q)
			select {
			case <-w.idle:
			case <-w.c.done:
			}
		}
	})
}

func (w *writer) drain() {
	defer close(w.idle)
	for p := range w.q {
		select {
		case <-time.After(time.Until(p.at)):
		case <-w.c.done:
			return
		}
		if !w.write(p.b) {
			return
		}
	}
}

// write sends b now, paced and sliced.
func (w *writer) write(b []byte) bool {
	f := w.c.f
	size := len(b)
	if w.dir == netstack.Down && f.Slice > 0 {
		size = f.Slice
	}
	for len(b) > 0 {
		p := b[:min(size, len(b))]
		b = b[len(p):]
		if w.lim != nil && w.lim.WaitN(context.Background(), len(p)) != nil {
			return false
		}
		if _, err := w.dst.Write(p); err != nil {
			// Under a blackhole down, the peer's end (a write that fails on
			// its RST) must not show either: the program's side stays,
			// unread from now on, as its data would stay unacknowledged.
			if w.dir != netstack.Up || !f.Blackhole[netstack.Down] {
				w.c.end()
			}
			return false
		}
		if len(b) > 0 && f.SliceDelay > 0 && w.dir == netstack.Down {
			select {
			case <-time.After(f.SliceDelay):
			case <-w.c.done:
				return false
			}
		}
	}
	return true
}

// udpFront relays datagrams to one destination.
type udpFront struct {
	r    *Relay
	conn *net.UDPConn
	addr netip.AddrPort
	dest netip.AddrPort
	f    *netstack.Faults

	mu    sync.Mutex
	ups   map[netip.AddrPort]*upstream
	done  bool
	peers front.Admitted
	admit Admit
	// delayed counts datagrams waiting out their latency: past maxDelayed
	// more are dropped, as a netem queue drops past its limit.
	delayed atomic.Int64
}

// upstream is the onward socket of one program socket, with its
// bandwidth's queues (nil without).
type upstream struct {
	conn   *net.UDPConn
	pace   [2]*pacer
	cookie uint64 // the program socket's (front.Admission.Cookie)
}

// maxDelayed is netem's default queue limit, in datagrams.
const maxDelayed = 1000

func (fr *udpFront) close() {
	fr.mu.Lock()
	fr.done = true
	for _, u := range fr.ups {
		u.conn.Close()
	}
	fr.mu.Unlock()
	fr.conn.Close()
}

// idle is how long an upstream UDP socket outlives its last datagram.
const idle = 60 * time.Second

func (fr *udpFront) serve() {
	defer fr.r.wg.Done()
	front.ServeUDP(fr.conn, &fr.peers, func(b []byte, src netip.AddrPort, adm front.Admission) {
		if up := fr.upstream(src, adm); up != nil {
			fr.send(netstack.Up, append([]byte(nil), b...), up.pace[netstack.Up], func(p []byte) { up.conn.Write(p) })
		}
	})
}

// send applies the faults of one datagram's direction: blackhole (dropped,
// as by a DROP), loss, duplication and latency, then the bandwidth's
// pacing (p, when not nil) before write.
func (fr *udpFront) send(dir int, b []byte, p *pacer, write func([]byte)) {
	f := fr.f
	if f.Blackhole[dir] || f.Loss > 0 && rand.Float64() < f.Loss {
		return
	}
	if p != nil {
		write = p.put
	}
	copies := 1
	if f.Duplicate > 0 && rand.Float64() < f.Duplicate {
		copies = 2
	}
	d := f.Latency[dir]
	if j := f.Jitter[dir]; j > 0 {
		d += time.Duration(rand.Int64N(int64(2*j))) - j
	}
	if d <= 0 {
		for range copies {
			write(b)
		}
		return
	}
	if fr.delayed.Add(1) > maxDelayed {
		fr.delayed.Add(-1)
		return
	}
	time.AfterFunc(d, func() {
		defer fr.delayed.Add(-1)
		for range copies {
			write(b)
		}
	})
}

// pacer sends datagrams at a rate, in order: a queue, as an htb class
// holds one, that drops what comes past its limit.
type pacer struct {
	q chan []byte
}

// newPacer paces write at bw bytes per second until ctx ends. The burst is
// the stream's (16 KiB at most); a datagram larger than it waits for its
// size in several takes.
func newPacer(ctx context.Context, wg *sync.WaitGroup, bw int64, write func([]byte)) *pacer {
	p := &pacer{q: make(chan []byte, maxDelayed)}
	lim := rate.NewLimiter(rate.Limit(bw), int(min(bw, 16<<10)))
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case b := <-p.q:
				for n := len(b); n > 0; {
					k := min(n, lim.Burst())
					if lim.WaitN(ctx, k) != nil {
						return
					}
					n -= k
				}
				write(b)
			}
		}
	}()
	return p
}

// put queues b, or drops it when the queue is full.
func (p *pacer) put(b []byte) {
	select {
	case p.q <- b:
	default:
	}
}

func (fr *udpFront) upstream(src netip.AddrPort, adm front.Admission) *upstream {
	mk := adm.Make
	fr.mu.Lock()
	defer fr.mu.Unlock()
	if fr.done {
		return nil
	}
	if u := fr.ups[src]; u != nil {
		if u.cookie == adm.Cookie {
			return u
		}
		// Another socket at the same address (the first one closed, its
		// port taken again, maybe under another user): never its onward
		// socket, which carries the first one's identity.
		delete(fr.ups, src)
		u.conn.Close()
	}
	if len(fr.ups) >= 4096 {
		return nil
	}
	// From the program socket's own address, as the datagram came.
	var local netip.AddrPort
	if fr.admit == nil {
		local = onwardSource(src.Addr(), fr.dest.Addr())
	}
	nc, err := front.Dial(fr.r.ctx, mk, "udp", local, fr.dest, 0)
	if err != nil {
		return nil
	}
	u, ok := nc.(*net.UDPConn)
	if !ok {
		nc.Close()
		return nil
	}
	if fr.admit != nil {
		fr.admit(u.LocalAddr().(*net.UDPAddr).AddrPort(), front.Cookie(u), mk)
	}
	up := &upstream{conn: u, cookie: adm.Cookie}
	ctx, cancel := context.WithCancel(fr.r.ctx)
	if bw := fr.f.Bandwidth[netstack.Up]; bw > 0 {
		up.pace[netstack.Up] = newPacer(ctx, &fr.r.wg, bw, func(p []byte) { u.Write(p) })
	}
	if bw := fr.f.Bandwidth[netstack.Down]; bw > 0 {
		up.pace[netstack.Down] = newPacer(ctx, &fr.r.wg, bw, func(p []byte) { front.Reply(fr.conn, &fr.peers, p, src) })
	}
	fr.ups[src] = up
	fr.r.wg.Add(1)
	go func() {
		defer fr.r.wg.Done()
		defer func() {
			cancel()
			fr.mu.Lock()
			if fr.ups[src] == up {
				delete(fr.ups, src)
			}
			fr.mu.Unlock()
			u.Close()
		}()
		buf := make([]byte, 65535)
		for {
			u.SetReadDeadline(time.Now().Add(idle))
			n, err := u.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			b := append([]byte(nil), buf[:n]...)
			fr.send(netstack.Down, b, up.pace[netstack.Down], func(p []byte) { front.Reply(fr.conn, &fr.peers, p, src) })
		}
	}()
	return up
}

// onwardSource is the address an onward socket binds (port 0) for a
// program socket that the front sees at prog: that socket's own address,
// when the program bound one, so that the peer sees the source it would
// see natively. A socket on the wildcard reaches the front from loopback,
// the kernel's own choice for a loopback destination, and no choice for
// another: nothing is bound then (the kernel chooses, as it would have).
// The port cannot be kept: the program's socket holds it.
func onwardSource(prog, dest netip.Addr) netip.AddrPort {
	prog, dest = prog.Unmap(), dest.Unmap()
	if !prog.IsValid() || prog.IsUnspecified() || prog.WithZone("") == front.Loopback(dest) ||
		prog.IsLoopback() && !dest.IsLoopback() {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(prog, 0)
}

// readUpTo reads at most limit bytes (at least one, to see the data and
// the end of file): with limit 0 it only waits for data, which it leaves
// unread. Peeking then reading what fits leaves the rest in the socket.
func readUpTo(src stream, buf []byte, limit int64) (int, error) {
	if limit >= int64(len(buf)) {
		return src.Read(buf)
	}
	rc, err := src.(syscall.Conn).SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr = unix.Recvfrom(int(fd), buf[:max(limit, 1)], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		return rerr != unix.EAGAIN
	})
	if err != nil {
		return 0, err
	}
	if rerr != nil {
		return 0, rerr
	}
	if n == 0 {
		return 0, io.EOF
	}
	if limit <= 0 {
		return n, nil // seen, left unread: the count is crossed at once
	}
	return src.Read(buf[:min(int64(n), limit)])
}

// FrontUnix relays one Unix stream connection to peer, a socket the caller
// already connected to the destination (as the program, so that its
// permissions and errors are the program's own): it returns the address of
// a listener, autobound in the abstract namespace, that takes exactly one
// connection, the program's.
func (r *Relay) FrontUnix(peer *os.File, f *netstack.Faults) ([]byte, error) {
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		peer.Close()
		return nil, errors.New("relay closed")
	}
	f = f.For(netstack.TypeStream)
	pc, err := net.FileConn(peer)
	peer.Close()
	if err != nil {
		return nil, err
	}
	lfd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		pc.Close()
		return nil, err
	}
	// An address of the family alone: the kernel picks an abstract name.
	if err = unix.Bind(lfd, &unix.SockaddrUnix{}); err == nil {
		err = unix.Listen(lfd, 1)
	}
	var name string
	if err == nil {
		var sa unix.Sockaddr
		if sa, err = unix.Getsockname(lfd); err == nil {
			name = sa.(*unix.SockaddrUnix).Name
		}
	}
	if err != nil {
		unix.Close(lfd)
		pc.Close()
		return nil, err
	}
	lf := os.NewFile(uintptr(lfd), "relay")
	ln, err := net.FileListener(lf)
	lf.Close()
	if err != nil {
		pc.Close()
		return nil, err
	}
	ul := ln.(*net.UnixListener)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		ul.SetDeadline(time.Now().Add(10 * time.Second)) // the program connects right after
		prog, err := ul.AcceptUnix()
		ul.Close()
		if err != nil {
			pc.Close()
			return
		}
		c := newConn(f, prog, pc.(*net.UnixConn))
		r.unixConns.Add(c, c.end)
		defer r.unixConns.Remove(c)
		c.start()
	}()
	// sockaddr_un: the family, then the abstract name with its leading NUL
	// (Go spells it '@').
	sa := make([]byte, 2, 2+len(name))
	*(*uint16)(unsafe.Pointer(&sa[0])) = unix.AF_UNIX
	sa = append(sa, 0)
	return append(sa, strings.TrimPrefix(name, "@")...), nil
}
