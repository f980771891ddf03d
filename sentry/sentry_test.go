package sentry

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"sandbox/netstack"
	"sandbox/seccomp"
)

// The filter, the dispatcher and the support matrix come from one table.
func TestTableDrivesFilterAndDispatch(t *testing.T) {
	d, err := newDispatchTable()
	if err != nil {
		t.Fatal(err)
	}
	rules := FilterRules(FilterOptions{})
	trapped := map[string]bool{}
	rows := 0
	for _, e := range table {
		if !e.usernsOnly {
			rows++
		}
		if e.handler != nil {
			trapped[e.name] = true
		} else if e.errno == 0 {
			t.Errorf("%s has neither a handler nor an errno", e.name)
		}
	}
	if raw := len(FilterRules(FilterOptions{RawSockets: true})); raw >= len(rules) {
		t.Errorf("--raw-sockets should drop the raw socket rules: %d rules either way", raw)
	}
	if len(rules) != rows || d.len() != len(trapped) {
		t.Fatalf("table has %d rows (%d trapped), filter %d rules, dispatch %d entries", rows, len(trapped), len(rules), d.len())
	}
	matrix := SupportMatrix()
	for i, r := range rules {
		if r.Syscall != table[i].name {
			t.Errorf("rule %d is %s, table says %s", i, r.Syscall, table[i].name)
		}
		if (r.Action == seccomp.Notify) != (table[i].handler != nil) || r.Action == seccomp.Errno && r.Errno != table[i].errno {
			t.Errorf("rule %s: action %v errno %v does not follow the table", r.Syscall, r.Action, r.Errno)
		}
		if !strings.Contains(matrix, "`"+r.Syscall+"`") {
			t.Errorf("support matrix misses %s", r.Syscall)
		}
	}
	for nr, e := range d.byNr {
		if e != nil && e.handler == nil {
			t.Errorf("syscall %d (%s) has no handler", nr, e.name)
		}
	}
}

// Every verdict goes through the one translation, and each that fails a
// call gets a distinct, documented errno.
func TestErrnoForEveryVerdict(t *testing.T) {
	cases := []struct {
		d    netstack.Decision
		want unix.Errno
	}{
		{netstack.Decision{Action: netstack.Allow}, 0},
		{netstack.Decision{Action: netstack.Redirect}, 0},
		{netstack.Decision{Action: netstack.Deny}, unix.EACCES},
		{netstack.Decision{Action: netstack.Deny, Reason: netstack.ReasonAccess}, unix.EACCES},
		{netstack.Decision{Action: netstack.Deny, Reason: netstack.ReasonPerm}, unix.EPERM},
		{netstack.Decision{Action: netstack.Deny, Reason: netstack.ReasonBroadcast}, unix.EACCES},
		{netstack.Decision{Action: netstack.Refuse}, unix.ECONNREFUSED},
		{netstack.Decision{Action: netstack.Unreachable}, unix.ENETUNREACH},
		{netstack.Decision{Action: netstack.Unreachable, Reason: netstack.ReasonNet}, unix.ENETUNREACH},
		{netstack.Decision{Action: netstack.Unreachable, Reason: netstack.ReasonHost}, unix.EHOSTUNREACH},
		{netstack.Decision{Action: netstack.Timeout}, unix.ETIMEDOUT},
	}
	for _, c := range cases {
		if got := errnoFor(c.d); got != c.want {
			t.Errorf("%v/%v: got %v, want %v", c.d.Action, c.d.Reason, errnoName(got), errnoName(c.want))
		}
	}
	if errnoName(unix.EACCES) != "EACCES" || errnoName(0) != "" {
		t.Errorf("errnoName: got %q and %q", errnoName(unix.EACCES), errnoName(0))
	}
}

func sockaddr(family uint16, body ...byte) []byte {
	b := make([]byte, 2, 2+len(body))
	binary.NativeEndian.PutUint16(b, family)
	return append(b, body...)
}

func TestDecodeRequest(t *testing.T) {
	in4 := sockaddr(unix.AF_INET, 0x1f, 0x90, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0)
	in6 := sockaddr(unix.AF_INET6, 0, 80, 0, 0, 0, 0)
	in6 = append(in6, netip.MustParseAddr("fe80::1").AsSlice()...)
	in6scoped := binary.NativeEndian.AppendUint32(append([]byte{}, in6...), 7)
	cases := []struct {
		name   string
		domain int
		typ    int
		addr   []byte
		want   string
	}{
		{"inet", unix.AF_INET, unix.SOCK_STREAM, in4, "tcp:127.0.0.1:8080"},
		{"inet udp", unix.AF_INET, unix.SOCK_DGRAM, in4, "udp:127.0.0.1:8080"},
		{"inet short", unix.AF_INET, unix.SOCK_STREAM, in4[:15], "tcp:invalid AddrPort"},
		// tcp_v6_connect rejects AF_INET (EAFNOSUPPORT); UDPv6 takes it.
		{"v4 address on inet6 tcp socket", unix.AF_INET6, unix.SOCK_STREAM, in4, "tcp:invalid AddrPort"},
		{"v4 address on inet6 udp socket", unix.AF_INET6, unix.SOCK_DGRAM, in4, "udp:127.0.0.1:8080"},
		{"v6 address on inet socket", unix.AF_INET, unix.SOCK_DGRAM, in6, "udp:invalid AddrPort"},
		{"inet6 rfc2133 length", unix.AF_INET6, unix.SOCK_STREAM, in6, "tcp:[fe80::1]:80"},
		{"inet6 scoped", unix.AF_INET6, unix.SOCK_STREAM, in6scoped, "tcp:[fe80::1%7]:80"},
		{"unspec", unix.AF_INET, unix.SOCK_STREAM, sockaddr(unix.AF_UNSPEC), "unspec"},
		{"unix path", unix.AF_UNIX, unix.SOCK_STREAM, sockaddr(unix.AF_UNIX, 'a', '/', 'b', 0, 'x'), "unix:a/b"},
		{"unix unterminated", unix.AF_UNIX, unix.SOCK_STREAM, sockaddr(unix.AF_UNIX, 'a', 'b'), "unix:ab"},
		{"unix abstract", unix.AF_UNIX, unix.SOCK_DGRAM, sockaddr(unix.AF_UNIX, 0, 'n', 0), "unix:@n\x00"},
		{"unix unnamed", unix.AF_UNIX, unix.SOCK_STREAM, sockaddr(unix.AF_UNIX), "unix:(unnamed)"},
		{"netlink", unix.AF_NETLINK, unix.SOCK_RAW, sockaddr(unix.AF_NETLINK, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), "other"},
		{"empty", unix.AF_INET, unix.SOCK_STREAM, nil, "tcp:invalid AddrPort"},
	}
	for _, c := range cases {
		r := decodeRequest(c.domain, c.typ, c.addr)
		if got := r.Dest(); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

func TestReadStatusOfSelf(t *testing.T) {
	st, err := readStatus("/proc/thread-self/status")
	if err != nil {
		t.Fatal(err)
	}
	if st.Tgid != unix.Getpid() || st.NSTgid == 0 {
		t.Errorf("Tgid %d NStgid %d, want %d", st.Tgid, st.NSTgid, unix.Getpid())
	}
	if st.Uid[1] != uint32(unix.Geteuid()) || st.Gid[1] != uint32(unix.Getegid()) {
		t.Errorf("uids %v gids %v", st.Uid, st.Gid)
	}
	if !sameCreds(st, st) {
		t.Error("a status differs from itself")
	}
	other := st
	other.Groups = append(append([]uint32{}, st.Groups...), 4242)
	if sameCreds(st, other) {
		t.Error("an extra supplementary group went unnoticed")
	}
}

func TestReadableChecksEveryPage(t *testing.T) {
	page := unix.Getpagesize()
	mem, err := unix.Mmap(-1, 0, 2*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	if err := unix.Mprotect(mem[page:], unix.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	base := uint64(uintptrOf(mem))
	tid := uint32(unix.Gettid())
	if !readable(tid, base, 16) {
		t.Error("first page should be readable")
	}
	if readable(tid, base+uint64(page)-8, 16) {
		t.Error("a range straddling into PROT_NONE must not be readable")
	}
	if readable(tid, base+uint64(page), 1) {
		t.Error("a PROT_NONE page must not be readable")
	}
}

// The README's support matrix is generated from the table; this keeps the
// two from drifting.
func TestReadmeSupportMatrix(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), SupportMatrix()) {
		t.Errorf("README.md's support matrix is stale; it must contain, verbatim:\n%s", SupportMatrix())
	}
}

func TestStatusFields(t *testing.T) {
	b := []byte("Name:\tx\nThreads:\t1\nSigQ:\t0/1\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000004000\nSigBlk:\t0000000000000002\n")
	if v, ok := statusField(b, "Threads:"); !ok || string(v) != "1" {
		t.Errorf("Threads: %q %v", v, ok)
	}
	if v, ok := statusHex(b, "ShdPnd:"); !ok || v != 1<<(15-1) {
		t.Errorf("ShdPnd: %x %v", v, ok)
	}
	if v, ok := statusHex(b, "SigBlk:"); !ok || v != 2 {
		t.Errorf("SigBlk: %x %v", v, ok)
	}
	if _, ok := statusHex(b, "SigCgt:"); ok {
		t.Error("SigCgt: found in a status without it")
	}
}

func TestParseStatus(t *testing.T) {
	const text = "Name:\tx\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4321\nNgid:\t0\nPid:\t4322\n" +
		"PPid:\t1\nUid:\t1000\t1001\t1002\t1003\nGid:\t2000\t2001\t2002\t2003\nFDSize:\t64\n" +
		"Groups:\t5 7 4294967294 \nNStgid:\t4321\t12\nNSpid:\t4322\t13\nThreads:\t3\n" +
		"SigPnd:\t0000000000000100\nShdPnd:\t0000000000000200\nSigBlk:\t0000000000010000\n" +
		"SigIgn:\t0000000000001000\nSigCgt:\t00000001800044ea\nCapInh:\t0000000000000000\n" +
		"CapPrm:\t000001ffffffffff\nCapEff:\t000001fFffffffff\n"
	var st status
	parseStatus([]byte(text), &st)
	want := status{Tgid: 4321, NSTgid: 12, NSPid: 13, NSDepth: 2,
		Uid: [4]uint32{1000, 1001, 1002, 1003}, Gid: [4]uint32{2000, 2001, 2002, 2003},
		Groups: []uint32{5, 7, 4294967294}, CapEff: 0x1ffffffffff, OwnCapEff: 0x1ffffffffff,
		SigBlk: 0x10000, SigIgn: 0x1000, SigCgt: 0x1800044ea, SigPnd: 0x100, ShdPnd: 0x200, Threads: 3}
	if fmt.Sprint(st) != fmt.Sprint(want) {
		t.Errorf("got %+v\nwant %+v", st, want)
	}
	var empty status
	parseStatus([]byte("Groups:\t\nNSpid:\nTgid:\n"), &empty)
	if empty.Groups != nil || empty.NSDepth != 0 || empty.Tgid != 0 {
		t.Errorf("empty fields: %+v", empty)
	}
	// Only the groups allocate: the parse runs once per trapped call.
	noGroups := []byte(text[:strings.Index(text, "Groups")])
	if n := testing.AllocsPerRun(100, func() { parseStatus(noGroups, &st) }); n != 0 {
		t.Errorf("parseStatus allocates %v times", n)
	}
}
