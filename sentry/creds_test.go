package sentry

import (
	"encoding/binary"
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

// The credentials the supervisor adds must sit where for_each_cmsghdr
// finds them, whatever the caller's buffer ends with.
func TestWithCallerCredsPlacement(t *testing.T) {
	s := &Supervisor{optmemMax: 20480}
	named := credsCmsg(unix.Ucred{Pid: 7, Uid: 8, Gid: 9})
	rights := cmsg(unix.SOL_SOCKET, unix.SCM_RIGHTS, make([]byte, 4))
	for _, c := range []struct {
		name    string
		control []byte
		at      int // where the credentials must start, -1: not added
		fits    bool
	}{
		{"none", nil, 0, true},
		{"rights", rights, 24, true},
		{"rights unpadded", rights[:20], 24, true},
		{"trailing bytes the kernel ignores", append(cmsg(1, 99, nil), 1, 2, 3, 4), 16, true},
		{"malformed", []byte{100, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0}, -1, true},
		{"over optmem_max", append(cmsg(1, 99, make([]byte, 20480-16)), 0), -1, false},
	} {
		out, fits := s.withCallerCreds(c.control, named)
		if fits != c.fits {
			t.Errorf("%s: fits %v, want %v", c.name, fits, c.fits)
		}
		if c.at < 0 {
			if len(out) != len(c.control) {
				t.Errorf("%s: changed to %d bytes", c.name, len(out))
			}
			continue
		}
		var found []int
		walkCmsgs(out, func(off int, h *unix.Cmsghdr) bool {
			if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_CREDENTIALS {
				found = append(found, off)
			}
			return true
		})
		if len(found) != 1 || found[0] != c.at {
			t.Errorf("%s: credentials at %v, want [%d]", c.name, found, c.at)
		}
	}
}

// setCredPids rewrites every well-formed SCM_CREDENTIALS, and nothing else.
func TestSetCredPids(t *testing.T) {
	a := credsCmsg(unix.Ucred{Pid: 1, Uid: 2, Gid: 3})
	b := cmsg(unix.SOL_SOCKET, unix.SCM_RIGHTS, []byte{1, 0, 0, 0})
	buf := append(append(append([]byte{}, a...), b...), a...)
	setCredPids(buf, 42)
	for _, off := range []int{0, len(a) + len(b)} {
		if pid := binary.NativeEndian.Uint32(buf[off+unix.CmsgLen(0):]); pid != 42 {
			t.Errorf("pid at %d: %d", off, pid)
		}
	}
	if fd := binary.NativeEndian.Uint32(buf[len(a)+unix.CmsgLen(0):]); fd != 1 {
		t.Errorf("SCM_RIGHTS changed: %d", fd)
	}
}

// In the supervisor's own user namespace ids map to themselves, and
// (uid_t)-1 is never valid (make_kuid gives INVALID_UID).
func TestMapIDOwnNamespace(t *testing.T) {
	tid := uint32(os.Getpid())
	if id, ok := mapID(tid, "uid_map", 1234, false); !ok || id != 1234 {
		t.Errorf("1234 maps to %d, %v", id, ok)
	}
	if _, ok := mapID(tid, "uid_map", ^uint32(0), false); ok {
		t.Error("(uid_t)-1 is valid")
	}
	// Through our own map (the initial namespace: 0 0 4294967295).
	if id, ok := mapID(tid, "uid_map", 65534, true); !ok || id != 65534 {
		t.Errorf("65534 maps through uid_map to %d, %v", id, ok)
	}
}
