package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// probeEnv makes the test binary a probe: it loads the profile, with the
// syscalls listed in the variable added, and prints what each probed
// syscall returns.
const probeEnv = "DOCKERPROFILE_PROBE"

func TestMain(m *testing.M) {
	if add, ok := os.LookupEnv(probeEnv); ok {
		os.Exit(probe(add))
	}
	os.Exit(m.Run())
}

// A probe is a syscall with arguments that are harmless whether or not it is
// allowed, and an outcome that tells the filter's answer from the kernel's.
type probeCase struct {
	name string
	call func() (uintptr, unix.Errno)
}

func sys(nr uintptr, a ...uintptr) func() (uintptr, unix.Errno) {
	return func() (uintptr, unix.Errno) {
		var v [6]uintptr
		copy(v[:], a)
		r, _, e := unix.Syscall6(nr, v[0], v[1], v[2], v[3], v[4], v[5])
		return r, e
	}
}

var empty = []byte{0}

var probes = []probeCase{
	{"getpid", sys(unix.SYS_GETPID)},
	{"socket(AF_INET)", func() (uintptr, unix.Errno) {
		r, e := sys(unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM)()
		if e == 0 {
			unix.Close(int(r))
		}
		return r, e
	}},
	// Allowed, the kernel answers EAFNOSUPPORT (no vsock module) or a socket.
	{"socket(AF_VSOCK)", sys(unix.SYS_SOCKET, afVsock, unix.SOCK_STREAM)},
	{"personality(0xffffffff)", sys(unix.SYS_PERSONALITY, 0xffffffff)},
	{"personality(ADDR_NO_RANDOMIZE)", sys(unix.SYS_PERSONALITY, 0x0040000)},
	// Allowed, clone3 would answer EINVAL (size 0).
	{"clone3", sys(unix.SYS_CLONE3, 0, 0)},
	// Allowed, CLONE_NEWNS|CLONE_FS is EINVAL before anything is created.
	{"clone(CLONE_NEWNS|CLONE_FS)", sys(unix.SYS_CLONE, unix.CLONE_NEWNS|unix.CLONE_FS)},
	{"io_uring_setup", sys(unix.SYS_IO_URING_SETUP, 0, 0)},
	{"unshare(0)", sys(unix.SYS_UNSHARE, 0)},
	{"setns(-1)", sys(unix.SYS_SETNS, ^uintptr(0), 0)},
	{"chroot(\"\")", sys(unix.SYS_CHROOT, uintptr(unsafe.Pointer(&empty[0])))},
	// Wrong magic numbers: EINVAL even for a root with CAP_SYS_BOOT.
	{"reboot(0)", sys(unix.SYS_REBOOT, 0, 0, 0, 0)},
	// An unknown request for pid 0: ESRCH when allowed.
	{"ptrace(0xffff, 0)", sys(unix.SYS_PTRACE, 0xffff, 0)},
	{"process_vm_readv(self, 0)", func() (uintptr, unix.Errno) {
		return sys(unix.SYS_PROCESS_VM_READV, uintptr(os.Getpid()), 0, 0, 0, 0, 0)()
	}},
	{"kcmp(self, self, KCMP_FILES)", func() (uintptr, unix.Errno) {
		return sys(unix.SYS_KCMP, uintptr(os.Getpid()), uintptr(os.Getpid()), 2)()
	}},
	{"pidfd_getfd(-1)", sys(unix.SYS_PIDFD_GETFD, ^uintptr(0), 0, 0)},
}

// probe runs on the main thread (locked in init): the filter covers it.
func probe(add string) int {
	var extra []string
	if add != "" {
		extra = strings.Split(add, ",")
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := LoadFilter(Rules(extra), false); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for _, p := range probes {
		r, e := p.call()
		if e != 0 {
			fmt.Printf("%s=%s\n", p.name, unix.ErrnoName(e))
		} else {
			fmt.Printf("%s=ok\n", p.name)
		}
		_ = r
	}
	return 0
}

func runProbe(t *testing.T, add string) map[string]string {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), probeEnv+"="+add)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("probe: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		got[k] = v
	}
	return got
}

// TestProfileBehaviour loads the profile in a child and checks what a few
// syscalls return: the filter's EPERM or ENOSYS, or the kernel's own answer.
func TestProfileBehaviour(t *testing.T) {
	stock := map[string]string{
		"getpid":                         "ok",
		"socket(AF_INET)":                "ok",
		"socket(AF_VSOCK)":               "EPERM",
		"personality(0xffffffff)":        "ok",
		"personality(ADDR_NO_RANDOMIZE)": "EPERM",
		"clone3":                         "ENOSYS",
		"clone(CLONE_NEWNS|CLONE_FS)":    "EPERM",
		"io_uring_setup":                 "EPERM",
		"unshare(0)":                     "EPERM",
		"setns(-1)":                      "EPERM",
		"chroot(\"\")":                   "EPERM",
		"reboot(0)":                      "EPERM",
		"ptrace(0xffff, 0)":              "ESRCH", // allowed (kernel >= 4.8)
		"process_vm_readv(self, 0)":      "ok",
		"kcmp(self, self, KCMP_FILES)":   "EPERM",
		"pidfd_getfd(-1)":                "EPERM",
	}
	added := map[string]string{}
	for k, v := range stock {
		added[k] = v
	}
	added["kcmp(self, self, KCMP_FILES)"] = "ok"
	added["pidfd_getfd(-1)"] = "EBADF"

	for _, c := range []struct {
		add  string
		want map[string]string
	}{{"", stock}, {strings.Join(SandboxAdd, ","), added}} {
		got := runProbe(t, c.add)
		for name, want := range c.want {
			if got[name] != want {
				t.Errorf("-add %q: %s = %s, want %s", c.add, name, got[name], want)
			}
		}
	}
}

// TestProfileBPF checks the exported BPF program covers the three x86 ABIs:
// it compares seccomp_data.arch with AUDIT_ARCH_X86_64 and AUDIT_ARCH_I386
// and handles x32 syscall numbers (__X32_SYSCALL_BIT set).
func TestProfileBPF(t *testing.T) {
	f, skipped, err := BuildFilter(Rules(nil), false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	if len(skipped) > 0 {
		t.Logf("unknown to this libseccomp, skipped: %v", skipped)
	}
	out, err := os.CreateTemp(t.TempDir(), "bpf")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.ExportBPF(out); err != nil {
		t.Fatal(err)
	}
	prog, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	if len(prog) == 0 || len(prog)%8 != 0 {
		t.Fatalf("BPF program of %d bytes", len(prog))
	}
	consts := map[uint32]bool{}
	for i := 0; i < len(prog); i += 8 {
		consts[binary.NativeEndian.Uint32(prog[i+4:])] = true // sock_filter.k
	}
	for name, k := range map[string]uint32{
		"AUDIT_ARCH_X86_64":         unix.AUDIT_ARCH_X86_64,
		"AUDIT_ARCH_I386":           unix.AUDIT_ARCH_I386,
		"x32 openat (0x40000101)":   0x40000000 | unix.SYS_OPENAT,
		"SECCOMP_RET_ERRNO|EPERM":   unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM),
		"SECCOMP_RET_ERRNO|ENOSYS":  unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS),
		"clone's namespace flags":   nsFlags,
		"socket's AF_VSOCK":         afVsock,
		"SECCOMP_RET_ALLOW":         unix.SECCOMP_RET_ALLOW,
		"personality's 0x20008 arg": 0x20008,
	} {
		if !consts[k] {
			t.Errorf("no instruction with k = %#x (%s)", k, name)
		}
	}
}

// TestProfileData checks the transcription for mistakes that read well.
func TestProfileData(t *testing.T) {
	allowed := map[string]int{}
	for _, r := range defaultRules {
		if r.Action != actAllow || len(r.Args) > 0 {
			continue
		}
		for _, n := range r.Names {
			allowed[n]++
		}
	}
	for n, c := range allowed {
		if c > 1 {
			t.Errorf("%s allowed %d times", n, c)
		}
	}
	for _, n := range []string{"io_uring_setup", "io_uring_enter", "io_uring_register", "clone", "clone3", "socket", "personality"} {
		if allowed[n] > 0 {
			t.Errorf("%s allowed unconditionally", n)
		}
	}
	// Capability-gated syscalls stay out, except process_vm_readv,
	// process_vm_writev and ptrace, which default.json also allows to
	// everyone on kernels >= 4.8.
	for c, names := range capabilityRules {
		for _, n := range names {
			if allowed[n] > 0 && !slices.Contains([]string{"process_vm_readv", "process_vm_writev", "ptrace"}, n) {
				t.Errorf("%s (needs %s) is allowed", n, c)
			}
		}
	}
	for _, n := range []string{"read", "write", "connect", "seccomp", "ioctl", "pidfd_open", "pidfd_send_signal", "wait4", "waitid", "prctl"} {
		if allowed[n] != 1 {
			t.Errorf("%s is not allowed", n)
		}
	}
}

// TestJSONUpToDate fails when examples/docker/seccomp-sandbox.json differs
// from the profile here plus SandboxAdd.
func TestJSONUpToDate(t *testing.T) {
	path := filepath.Join("..", "..", "..", "examples", "docker", "seccomp-sandbox.json")
	have, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := ProfileJSON(Rules(SandboxAdd))
	if !bytes.Equal(have, want) {
		t.Fatalf("%s is out of date; regenerate it from the module root with\n\tgo run ./tests/container/dockerprofile -add %s -print-json > examples/docker/seccomp-sandbox.json",
			path, strings.Join(SandboxAdd, ","))
	}
	var p jsonProfile
	if err := json.Unmarshal(have, &p); err != nil {
		t.Fatal(err)
	}
	last := p.Syscalls[len(p.Syscalls)-1]
	if last.Action != actAllow || !slices.Equal(last.Names, SandboxAdd) {
		t.Errorf("last rule %+v does not add %v", last, SandboxAdd)
	}
}
