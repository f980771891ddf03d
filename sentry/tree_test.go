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
