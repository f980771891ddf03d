package sentry

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"sandbox/netstack"
)

// tree answers, for the "self" default, whether a destination is a socket
// that the sandboxed process tree itself listens on (TCP, Unix stream and
// seqpacket) or has bound (UDP, Unix datagram).
//
// It asks the kernel at decision time instead of tracking bind, listen and
// close: the caller's /proc/TID/net tables (its own network namespace) name
// the sockets at the destination, and the descriptor tables of the tree's
// processes say who holds them.
//
// The sockets at a destination are looked up anew every time, so a port the
// tree closed and an outside process took is never mistaken for the tree's.
// What is cached is which socket inodes the tree was seen to hold: an inode
// names one socket for that socket's whole life, so scanning the tree's
// descriptors (10,000 of them, for a busy program) is paid once per
// listener, not once per connect.
type tree struct {
	self int

	mu    sync.Mutex
	owned map[uint64]bool
	// notOwned remembers, for notOwnedTTL, sockets seen held only outside
	// the tree. It can only make the oracle deny, which fails closed; the
	// TTL bounds how long a socket passed into the tree (SCM_RIGHTS) stays
	// unrecognised.
	notOwned map[uint64]time.Time
}

const notOwnedTTL = time.Second

const maxOwnedCache = 1 << 16

func newTree() *tree {
	return &tree{self: os.Getpid(), owned: map[uint64]bool{}, notOwned: map[uint64]time.Time{}}
}

// owns reports whether c's destination belongs to the tree.
func (t *tree) owns(c *call) bool {
	var inodes map[uint64]bool
	switch c.req.Family {
	case netstack.FamilyInet, netstack.FamilyInet6:
		inodes = inetSockets(c.n.Pid, c.req, c.typ)
	case netstack.FamilyUnix:
		inodes = unixSockets(c)
	}
	if len(inodes) == 0 {
		return false
	}
	now := time.Now()
	t.mu.Lock()
	known := 0
	for ino := range inodes {
		if t.owned[ino] {
			t.mu.Unlock()
			return true
		}
		if at, ok := t.notOwned[ino]; ok && now.Sub(at) < notOwnedTTL {
			known++
		}
	}
	t.mu.Unlock()
	if known == len(inodes) {
		return false
	}
	defer func() {
		t.mu.Lock()
		if len(t.notOwned) >= maxOwnedCache {
			clear(t.notOwned)
		}
		for ino := range inodes {
			if !t.owned[ino] {
				t.notOwned[ino] = now
			}
		}
		t.mu.Unlock()
	}()
	for _, pid := range descendants(t.self) {
		if ino, ok := holdsAny(pid, inodes); ok {
			t.mu.Lock()
			if len(t.owned) >= maxOwnedCache {
				clear(t.owned)
			}
			t.owned[ino] = true
			t.mu.Unlock()
			return true
		}
	}
	return false
}

// inetSockets lists the inodes of sockets in the caller's network namespace
// that a connect to r's address would reach: TCP listeners, or bound UDP
// sockets, at that address or at a wildcard address on that port.
func inetSockets(tid uint32, r netstack.Request, typ int) map[uint64]bool {
	proto := "tcp"
	if typ == unix.SOCK_DGRAM {
		proto = "udp"
	}
	dst := r.Addr.Addr().Unmap()
	port := r.Addr.Port()
	out := map[uint64]bool{}
	// A wildcard bind is reached through any local address; whether dst is
	// one is asked only when such a bind is found.
	local := func() bool { return isLocal(dst) }
	if sameNetns(tid) {
		p, states := uint8(unix.IPPROTO_TCP), uint32(1<<10) // TCP_LISTEN
		if proto == "udp" {
			p, states = unix.IPPROTO_UDP, ^uint32(0)
		}
		if socks, err := diagSockets(p, states, port); err == nil {
			for ap, ino := range socks {
				if a := ap.Addr().Unmap(); ino != 0 && (a == dst || a.IsUnspecified() && local()) {
					out[ino] = true
				}
			}
			return out
		}
	}
	for _, file := range []string{proto, proto + "6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", tid, file))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 {
				continue
			}
			addr, ok := parseProcAddr(fields[1])
			if !ok || addr.Port() != port {
				continue
			}
			if proto == "tcp" && fields[3] != "0A" { // TCP_LISTEN
				continue
			}
			a := addr.Addr().Unmap()
			if a != dst && !(a.IsUnspecified() && local()) {
				continue
			}
			if ino, err := strconv.ParseUint(fields[9], 10, 64); err == nil && ino != 0 {
				out[ino] = true
			}
		}
		f.Close()
	}
	return out
}

// isLocal reports whether a reaches this host: loopback, or an address of
// one of its interfaces (the supervisor's network namespace).
func isLocal(a netip.Addr) bool {
	if a.IsLoopback() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, x := range addrs {
		if p, err := netip.ParsePrefix(x.String()); err == nil && p.Addr().Unmap() == a {
			return true
		}
	}
	return false
}

// parseProcAddr decodes /proc/net/tcp's "0100007F:1F90" (host-order words).
func parseProcAddr(s string) (netip.AddrPort, bool) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	raw, err := hex.DecodeString(h)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, false
	}
	// Each 32-bit word is printed in host (little-endian) order.
	for i := 0; i < len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	a, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(a, uint16(port)), true
}

// unixSockets lists the inodes of bound Unix sockets at c's destination: by
// abstract name, or, for a path, by the socket file actually opened.
func unixSockets(c *call) map[uint64]bool {
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/unix", c.n.Pid))
	if err != nil {
		return nil
	}
	defer f.Close()
	var target unix.Stat_t
	if c.unix != nil && unix.Fstat(c.unix.obj, &target) != nil {
		return nil
	}
	out := map[uint64]bool{}
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 {
			continue // unnamed
		}
		name := fields[7]
		ino, err := strconv.ParseUint(fields[6], 10, 64)
		if err != nil {
			continue
		}
		switch {
		case c.req.Unix.Abstract:
			if name == "@"+c.req.Unix.Name {
				out[ino] = true
			}
		case c.unix != nil && strings.HasPrefix(name, "/"):
			var st unix.Stat_t
			if unix.Stat(name, &st) == nil && st.Dev == target.Dev && st.Ino == target.Ino {
				out[ino] = true
			}
		}
	}
	return out
}

// holdsAny reports which of inodes process pid holds a descriptor for.
func holdsAny(pid int, inodes map[uint64]bool) (uint64, bool) {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, false
	}
	for _, e := range ents {
		link, err := os.Readlink(dir + "/" + e.Name())
		if err != nil || !strings.HasPrefix(link, "socket:[") {
			continue
		}
		if ino, err := strconv.ParseUint(link[len("socket:["):len(link)-1], 10, 64); err == nil && inodes[ino] {
			return ino, true
		}
	}
	return 0, false
}
