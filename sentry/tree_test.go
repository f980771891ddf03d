package sentry

import (
	"net/netip"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// The FIB, not an address list, says what is local: loopback is, the
// loopback network's broadcast, multicast and a documentation address are
// not. (A route lookup sends nothing.)
func TestRouteLocal(t *testing.T) {
	for a, want := range map[string]bool{
		"127.0.0.1": true, "127.1.2.3": true, "::1": true,
		"127.255.255.255": false, "255.255.255.255": false, "224.0.0.1": false,
		"ff02::1": false, "192.0.2.1": false, "2001:db8::1": false,
	} {
		if got := routeLocal(netip.MustParseAddr(a), flow{proto: unix.IPPROTO_UDP, dport: 9}); got != want {
			t.Errorf("routeLocal(%s) = %v, want %v", a, got, want)
		}
	}
}

// udiag_vfs_dev is the kernel's dev_t (MAJOR<<20 | MINOR), st_dev the
// user-space encoding.
func TestSameDev(t *testing.T) {
	var st unix.Stat_t
	if err := unix.Stat(os.TempDir(), &st); err != nil {
		t.Fatal(err)
	}
	k := unix.Major(st.Dev)<<20 | unix.Minor(st.Dev)
	if !sameDev(k, st.Dev) {
		t.Errorf("sameDev(%#x, %#x) = false", k, st.Dev)
	}
	if sameDev(k+1, st.Dev) || sameDev(uint32(st.Dev)+1<<20, st.Dev) {
		t.Error("sameDev matched another device")
	}
	// minor 0x123 on major 8 is 0x823 + 0x100<<12 in user space.
	if !sameDev(8<<20|0x123, unix.Mkdev(8, 0x123)) {
		t.Error("a minor above 255")
	}
}

// A Unix socket bound by path is found by its file's inode, with its bound
// name and cookie; an abstract one by its exact bytes.
func TestDiagUnix(t *testing.T) {
	path := t.TempDir() + "/s"
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	ab, _ := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	defer unix.Close(ab)
	name := "\x00sbx diag\x00x"
	if err := unix.Bind(ab, &unix.SockaddrUnix{Name: "@" + name[1:]}); err != nil {
		t.Fatal(err)
	}
	var st, sock unix.Stat_t
	unix.Stat(path, &st)
	unix.Fstat(fd, &sock)
	nl, err := diagSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(nl)
	socks, err := diagUnix(nl)
	if err != nil {
		t.Fatal(err)
	}
	var byPath, byName int
	for _, s := range socks {
		if s.hasVFS && s.vfsIno == uint32(st.Ino) && sameDev(s.vfsDev, st.Dev) {
			byPath++
			if s.ino != sock.Ino || s.cookie == 0 || s.name != path+"\x00" {
				t.Errorf("by path: %+v, want inode %d, name %q", s, sock.Ino, path)
			}
		}
		if s.name == name {
			byName++
		}
	}
	if byPath != 1 || byName != 1 {
		t.Errorf("found %d by path, %d by abstract name; want 1 and 1", byPath, byName)
	}
}

// sockIno is the inode of socket fd.
func sockIno(t *testing.T, fd int) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// boundSock makes a socket of family fam and type typ bound to addr:port
// (listening, for a stream), with V6ONLY set to v6only on IPv6.
func boundSock(t *testing.T, fam, typ int, addr string, port int, v6only int) int {
	t.Helper()
	fd, err := unix.Socket(fam, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	a := netip.MustParseAddr(addr)
	var sa unix.Sockaddr
	if fam == unix.AF_INET6 {
		unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v6only)
		sa = &unix.SockaddrInet6{Port: port, Addr: a.As16()}
	} else {
		sa = &unix.SockaddrInet4{Port: port, Addr: a.As4()}
	}
	if err := unix.Bind(fd, sa); err != nil {
		t.Fatal(err)
	}
	if typ == unix.SOCK_STREAM {
		if err := unix.Listen(fd, 8); err != nil {
			t.Fatal(err)
		}
	}
	return fd
}

func portOf(t *testing.T, fd int) int {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return a.Port
	case *unix.SockaddrInet6:
		return a.Port
	}
	return 0
}

// The exact lookups name the socket the kernel would pick, in the sockid's
// orientation of each protocol (TCP: local as the source; UDP: swapped),
// finding dual-stack sockets for IPv4 and connected UDP sockets only from
// their peer; a port nothing is bound to is no socket, not an error.
func TestLookupInet(t *testing.T) {
	nl, err := getInetDiag()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(nl)
	any4, lo4 := netip.IPv4Unspecified(), netip.MustParseAddr("127.0.0.1")
	look := func(proto int, local netip.Addr, port int, remote netip.Addr, rport int) (uint64, bool) {
		t.Helper()
		fam := uint8(unix.AF_INET)
		if local.Is6() {
			fam = unix.AF_INET6
		}
		m, found, err := lookupInet(nl, fam, uint8(proto), local, uint16(port), remote, uint16(rport), loopbackIfindex)
		if err != nil {
			t.Fatalf("lookupInet(%d, %s:%d): %v", proto, local, port, err)
		}
		if found && (m.cookie == 0 || m.port != uint16(port)) {
			t.Errorf("lookupInet(%d, %s:%d) = %+v", proto, local, port, m)
		}
		return m.ino, found
	}
	tl := boundSock(t, unix.AF_INET, unix.SOCK_STREAM, "127.0.0.1", 0, 0)
	if ino, ok := look(unix.IPPROTO_TCP, lo4, portOf(t, tl), any4, 0); !ok || ino != sockIno(t, tl) {
		t.Errorf("TCP listener: %d %v, want %d", ino, ok, sockIno(t, tl))
	}
	dual := boundSock(t, unix.AF_INET6, unix.SOCK_STREAM, "::", 0, 0)
	if ino, ok := look(unix.IPPROTO_TCP, lo4, portOf(t, dual), any4, 0); !ok || ino != sockIno(t, dual) {
		t.Errorf("dual-stack TCP listener for IPv4: %d %v", ino, ok)
	}
	if ino, ok := look(unix.IPPROTO_TCP, netip.IPv6Loopback(), portOf(t, dual), netip.IPv6Unspecified(), 0); !ok || ino != sockIno(t, dual) {
		t.Errorf("dual-stack TCP listener for IPv6: %d %v", ino, ok)
	}
	v6only := boundSock(t, unix.AF_INET6, unix.SOCK_STREAM, "::", 0, 1)
	if ino, ok := look(unix.IPPROTO_TCP, lo4, portOf(t, v6only), any4, 0); ok {
		t.Errorf("a V6ONLY listener found for IPv4: %d", ino)
	}
	us := boundSock(t, unix.AF_INET, unix.SOCK_DGRAM, "127.0.0.1", 0, 0)
	if ino, ok := look(unix.IPPROTO_UDP, lo4, portOf(t, us), any4, 0); !ok || ino != sockIno(t, us) {
		t.Errorf("UDP socket: %d %v", ino, ok)
	}
	uc := boundSock(t, unix.AF_INET, unix.SOCK_DGRAM, "127.0.0.1", 0, 0)
	peer := portOf(t, us)
	if err := unix.Connect(uc, &unix.SockaddrInet4{Port: peer, Addr: lo4.As4()}); err != nil {
		t.Fatal(err)
	}
	if ino, ok := look(unix.IPPROTO_UDP, lo4, portOf(t, uc), lo4, peer); !ok || ino != sockIno(t, uc) {
		t.Errorf("connected UDP socket from its peer: %d %v", ino, ok)
	}
	if ino, ok := look(unix.IPPROTO_UDP, lo4, portOf(t, uc), any4, 0); ok {
		t.Errorf("connected UDP socket from an unbound sender: %d", ino)
	}
	free := boundSock(t, unix.AF_INET, unix.SOCK_DGRAM, "127.0.0.1", 0, 0)
	fp := portOf(t, free)
	unix.Close(free)
	if ino, ok := look(unix.IPPROTO_UDP, lo4, fp, any4, 0); ok {
		t.Errorf("a closed UDP port: %d", ino)
	}
	// The socket stays usable after a "no socket" answer.
	if _, ok := look(unix.IPPROTO_TCP, lo4, portOf(t, tl), any4, 0); !ok {
		t.Error("after ENOENT, the next lookup failed")
	}
}

// One compatibility dump lists the TCP listeners of both families on the
// port, with V6ONLY.
func TestDiagInetBothFamilies(t *testing.T) {
	l4 := boundSock(t, unix.AF_INET, unix.SOCK_STREAM, "127.0.0.1", 0, 0)
	port := portOf(t, l4)
	l6 := boundSock(t, unix.AF_INET6, unix.SOCK_STREAM, "::", port, 1)
	nl, err := getInetDiag()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(nl)
	socks, err := diagInet(nl, unix.AF_UNSPEC, unix.IPPROTO_TCP, 1<<tcpListen, uint16(port), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint64]inetSock{}
	for _, s := range socks {
		got[s.ino] = s
	}
	if s, ok := got[sockIno(t, l4)]; !ok || s.family != unix.AF_INET || s.addr != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("the IPv4 listener: %+v %v", s, ok)
	}
	if s, ok := got[sockIno(t, l6)]; !ok || s.family != unix.AF_INET6 || !s.v6only || s.addr != netip.IPv6Unspecified() {
		t.Errorf("the V6ONLY listener: %+v %v", s, ok)
	}
	if len(got) != 2 {
		t.Errorf("%d sockets on port %d, want 2: %+v", len(got), port, socks)
	}
}

// A bound-name cache key names one file: the same file through another
// descriptor or a hard link gives the same key, a new file at the same path
// another one, with the unique mount id where the kernel gives it and with
// the device otherwise.
func TestBoundKey(t *testing.T) {
	defer noUniqueMntID.Store(noUniqueMntID.Load())
	for _, byDev := range []bool{false, true} {
		noUniqueMntID.Store(byDev)
		dir := t.TempDir()
		p := dir + "/s"
		key := func(path string) string {
			t.Helper()
			fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(fd)
			var k boundKey
			b, ok := k.of(fd)
			if !ok {
				t.Skipf("no file handle for %s", path)
			}
			return string(b)
		}
		sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Bind(sock, &unix.SockaddrUnix{Name: p}); err != nil {
			t.Fatal(err)
		}
		k1 := key(p)
		if tag := k1[0]; byDev && tag != 'd' || !byDev && tag != 'm' && !noUniqueMntID.Load() {
			t.Errorf("byDev=%v: key tag %q", byDev, tag)
		}
		if err := os.Link(p, dir+"/l"); err != nil {
			t.Fatal(err)
		}
		if k1 != key(p) || k1 != key(dir+"/l") {
			t.Errorf("byDev=%v: one file, two keys", byDev)
		}
		unix.Close(sock)
		os.Remove(p)
		os.Remove(dir + "/l")
		sock, err = unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Bind(sock, &unix.SockaddrUnix{Name: p}); err != nil {
			t.Fatal(err)
		}
		if key(p) == k1 {
			t.Errorf("byDev=%v: a new file at the same path has the old key", byDev)
		}
		unix.Close(sock)
	}
}
