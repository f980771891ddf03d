package sentry

import (
	"testing"

	"golang.org/x/sys/unix"

	"sandbox/seccomp"
)

// evalFilter interprets the table's filter on one call, as the kernel's
// seccomp_run_filters would: seccomp_data words are native-endian, x/net/bpf
// loads big-endian, so each word is stored byte-swapped.
func evalFilter(t *testing.T, opts FilterOptions, name string, args ...uint64) uint32 {
	t.Helper()
	prog, err := seccomp.ExportBPF(FilterRules(opts))
	if err != nil {
		t.Fatal(err)
	}
	nr, err := seccomp.SyscallNumber(name)
	if err != nil {
		t.Fatal(err)
	}
	var a [6]uint64
	copy(a[:], args)
	return runBPF(t, prog, nr, a)
}

const (
	retAllow = 0x7fff0000
	retErrno = 0x00050000
)

// The user-namespace and raw-socket rows, on synthetic calls: one-bit masks
// must hold whatever the upper 32 bits carry, and --allow-userns and
// --raw-sockets (or a program without CAP_NET_RAW) must remove exactly them.
func TestLayerRows(t *testing.T) {
	eperm, enosys := uint32(retErrno|unix.EPERM), uint32(retErrno|unix.ENOSYS)
	const notify = 0x7fc00000 // SECCOMP_RET_USER_NOTIF: an observation (credcache.go)
	def, userns, raw := FilterOptions{}, FilterOptions{AllowUserns: true}, FilterOptions{RawSockets: true}
	cases := []struct {
		name string
		opts FilterOptions
		sys  string
		args []uint64
		want uint32
	}{
		{"unshare user", def, "unshare", []uint64{unix.CLONE_NEWUSER}, eperm},
		{"unshare user+mount", def, "unshare", []uint64{unix.CLONE_NEWUSER | unix.CLONE_NEWNS}, eperm},
		{"unshare user, high garbage", def, "unshare", []uint64{1<<32 | unix.CLONE_NEWUSER}, eperm},
		{"unshare net", def, "unshare", []uint64{unix.CLONE_NEWNET}, retAllow},
		{"unshare user allowed", userns, "unshare", []uint64{unix.CLONE_NEWUSER}, notify},
		{"unshare mount", def, "unshare", []uint64{unix.CLONE_NEWNS}, notify},
		{"unshare mount, high garbage", def, "unshare", []uint64{1<<32 | unix.CLONE_NEWNS}, notify},
		{"clone user", def, "clone", []uint64{unix.CLONE_NEWUSER | uint64(unix.SIGCHLD)}, eperm},
		{"clone thread", def, "clone", []uint64{unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_THREAD}, retAllow},
		{"clone user allowed", userns, "clone", []uint64{unix.CLONE_NEWUSER}, retAllow},
		{"clone3", def, "clone3", []uint64{0x1000, 88}, enosys},
		{"clone3 allowed", userns, "clone3", []uint64{0x1000, 88}, retAllow},
		{"setns user", def, "setns", []uint64{3, unix.CLONE_NEWUSER}, eperm},
		{"setns pidfd user+net", def, "setns", []uint64{3, unix.CLONE_NEWUSER | unix.CLONE_NEWNET}, eperm},
		{"setns any", def, "setns", []uint64{3, 0}, eperm},
		// nstype is an int: 1<<32 is 0 to the kernel.
		{"setns any, high garbage", def, "setns", []uint64{3, 1 << 32}, eperm},
		{"setns net", def, "setns", []uint64{3, unix.CLONE_NEWNET}, retAllow},
		{"setns any allowed", userns, "setns", []uint64{3, 0}, notify},
		{"setns mount", def, "setns", []uint64{3, unix.CLONE_NEWNS}, notify},
		{"setns pidfd mount+net", def, "setns", []uint64{3, unix.CLONE_NEWNS | unix.CLONE_NEWNET}, notify},
		{"setns pidfd user+mount", def, "setns", []uint64{3, unix.CLONE_NEWUSER | unix.CLONE_NEWNS}, eperm},
		{"setns net allowed", userns, "setns", []uint64{3, unix.CLONE_NEWNET}, retAllow},
		{"xdp", def, "socket", []uint64{unix.AF_XDP, unix.SOCK_RAW}, eperm},
		{"xdp, high garbage", def, "socket", []uint64{1<<32 | unix.AF_XDP, unix.SOCK_RAW}, eperm},
		{"inet SOCK_PACKET", def, "socket", []uint64{unix.AF_INET, unix.SOCK_PACKET}, eperm},
		{"inet SOCK_PACKET cloexec", def, "socket", []uint64{unix.AF_INET, unix.SOCK_PACKET | unix.SOCK_CLOEXEC}, eperm},
		{"xdp left to the kernel", raw, "socket", []uint64{unix.AF_XDP, unix.SOCK_RAW}, retAllow},
		{"raw left to the kernel", raw, "socket", []uint64{unix.AF_INET, unix.SOCK_RAW, 255}, retAllow},
		{"raw refused by the filter", def, "socket", []uint64{unix.AF_INET, unix.SOCK_RAW, 255}, eperm},
		{"udp", def, "socket", []uint64{unix.AF_INET, unix.SOCK_DGRAM}, retAllow},
	}
	for _, c := range cases {
		if got := evalFilter(t, c.opts, c.sys, c.args...); got != c.want {
			t.Errorf("%s: got %#x, want %#x", c.name, got, c.want)
		}
	}
}

// The C init stage's messages say what Go's would: errno texts exactly as
// syscall.Errno gives them.
func TestInitStageErrnoTexts(t *testing.T) {
	for e := 0; e <= 140; e++ {
		if got, want := cErrstr(e), unix.Errno(e).Error(); got != want {
			t.Errorf("errno %d: C says %q, Go %q", e, got, want)
		}
	}
}
