package seccomp

import (
	"encoding/binary"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Return values of the seccomp BPF programs.
const (
	retAllow       = 0x7fff0000
	retNotify      = 0x7fc00000
	retKillProcess = 0x80000000
	retErrnoBase   = 0x00050000
)

// run interprets prog on data the way the kernel does. Seccomp loads 32-bit
// words in native (little-endian) order; the x/net/bpf VM loads big-endian,
// so each word of seccomp_data is stored byte-swapped.
func run(t *testing.T, prog []unix.SockFilter, d Data) uint32 {
	t.Helper()
	raw := make([]bpf.RawInstruction, len(prog))
	for i, in := range prog {
		raw[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatalf("program does not disassemble")
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatalf("vm: %v", err)
	}
	words := []uint32{uint32(d.Nr), d.Arch, uint32(d.InstructionPointer), uint32(d.InstructionPointer >> 32)}
	for _, a := range d.Args {
		words = append(words, uint32(a), uint32(a>>32))
	}
	buf := make([]byte, 4*len(words))
	for i, w := range words {
		binary.BigEndian.PutUint32(buf[4*i:], w)
	}
	out, err := vm.Run(buf)
	if err != nil {
		t.Fatalf("vm run: %v", err)
	}
	return uint32(out)
}

func nr(t *testing.T, name string) int32 {
	t.Helper()
	n, err := SyscallNumber(name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestMainFilter(t *testing.T) {
	rules := []Rule{
		{Syscall: "connect", Action: Notify},
		{Syscall: "io_uring_setup", Action: Errno, Errno: unix.ENOSYS},
		{Syscall: "sendto", Action: Notify, Conds: []Cond{{Arg: 4, Value: 0, NotEqual: true}}},
		{Syscall: "socket", Action: Errno, Errno: unix.EPERM, Conds: []Cond{{Arg: 0, Mask: 0xffffffff, Value: unix.AF_PACKET}}},
		{Syscall: "socket", Action: Errno, Errno: unix.EPERM, Conds: []Cond{{Arg: 0, Mask: 0xffffffff, Value: unix.AF_INET}, {Arg: 1, Mask: 0xf, Value: unix.SOCK_RAW}}},
	}
	prog, err := ExportBPF(rules)
	if err != nil {
		t.Fatal(err)
	}
	const i386Connect = 362 // connect on i386
	cases := []struct {
		name string
		d    Data
		want uint32
	}{
		{"connect traps", Data{Nr: nr(t, "connect"), Arch: unix.AUDIT_ARCH_X86_64}, retNotify},
		{"getpid passes", Data{Nr: nr(t, "getpid"), Arch: unix.AUDIT_ARCH_X86_64}, retAllow},
		{"errno rule", Data{Nr: nr(t, "io_uring_setup"), Arch: unix.AUDIT_ARCH_X86_64}, retErrnoBase | uint32(unix.ENOSYS)},
		{"i386 kills", Data{Nr: i386Connect, Arch: unix.AUDIT_ARCH_I386}, retKillProcess},
		{"other arch kills", Data{Nr: 42, Arch: unix.AUDIT_ARCH_AARCH64}, retKillProcess},
		{"sendto without address passes", Data{Nr: nr(t, "sendto"), Arch: unix.AUDIT_ARCH_X86_64}, retAllow},
		{"sendto with low address traps", Data{Nr: nr(t, "sendto"), Arch: unix.AUDIT_ARCH_X86_64, Args: [6]uint64{4: 0x1000}}, retNotify},
		// A pointer whose low 32 bits are zero is still a pointer.
		{"sendto with high-only address traps", Data{Nr: nr(t, "sendto"), Arch: unix.AUDIT_ARCH_X86_64, Args: [6]uint64{4: 1 << 32}}, retNotify},
		{"packet socket denied", Data{Nr: nr(t, "socket"), Arch: unix.AUDIT_ARCH_X86_64, Args: [6]uint64{unix.AF_PACKET, unix.SOCK_RAW}}, retErrnoBase | uint32(unix.EPERM)},
		{"raw inet socket with flags denied", Data{Nr: nr(t, "socket"), Arch: unix.AUDIT_ARCH_X86_64, Args: [6]uint64{unix.AF_INET, unix.SOCK_RAW | unix.SOCK_CLOEXEC}}, retErrnoBase | uint32(unix.EPERM)},
		{"tcp socket passes", Data{Nr: nr(t, "socket"), Arch: unix.AUDIT_ARCH_X86_64, Args: [6]uint64{unix.AF_INET, unix.SOCK_STREAM}}, retAllow},
		{"raw inet6 passes this rule set", Data{Nr: nr(t, "socket"), Arch: unix.AUDIT_ARCH_X86_64, Args: [6]uint64{unix.AF_INET6, unix.SOCK_RAW}}, retAllow},
		// socket() takes an int: the kernel ignores the upper 32 bits, so
		// the rule must too, or high garbage would smuggle AF_PACKET through.
		{"family with high bits is still packet", Data{Nr: nr(t, "socket"), Arch: unix.AUDIT_ARCH_X86_64, Args: [6]uint64{1<<32 | unix.AF_PACKET, unix.SOCK_RAW}}, retErrnoBase | uint32(unix.EPERM)},
	}
	for _, c := range cases {
		if got := run(t, prog, c.d); got != c.want {
			t.Errorf("%s: got %#x, want %#x", c.name, got, c.want)
		}
	}
}

func TestX32Guard(t *testing.T) {
	prog, err := ExportX32GuardBPF()
	if err != nil {
		t.Fatal(err)
	}
	const x32Bit = 0x40000000
	cases := []struct {
		name string
		d    Data
		want uint32
	}{
		{"x32 connect kills", Data{Nr: x32Bit | nr(t, "connect"), Arch: unix.AUDIT_ARCH_X86_64}, retKillProcess},
		{"x32 getpid kills", Data{Nr: x32Bit | nr(t, "getpid"), Arch: unix.AUDIT_ARCH_X86_64}, retKillProcess},
		{"native passes to the main filter", Data{Nr: nr(t, "connect"), Arch: unix.AUDIT_ARCH_X86_64}, retAllow},
		{"i386 passes to the main filter", Data{Nr: 362, Arch: unix.AUDIT_ARCH_I386}, retAllow},
	}
	for _, c := range cases {
		if got := run(t, prog, c.d); got != c.want {
			t.Errorf("%s: got %#x, want %#x", c.name, got, c.want)
		}
	}
}

func TestUnknownSyscallIsAnError(t *testing.T) {
	if _, err := ExportBPF([]Rule{{Syscall: "no_such_call", Action: Notify}}); err == nil {
		t.Fatal("want an error for an unknown syscall name")
	}
	if _, err := ExportBPF([]Rule{{Syscall: "connect"}}); err == nil {
		t.Fatal("want an error for a rule without an action")
	}
}

// One program with the guard's prefix decides every call as the kernel
// decides with the two filters (the strictest of the guard's and the main
// filter's results): x32 numbers kill, foreign arches kill, native calls get
// the main filter's answer, whatever their arguments.
func TestWithX32GuardMatchesTwoFilters(t *testing.T) {
	rules := []Rule{
		{Syscall: "connect", Action: Notify},
		{Syscall: "io_uring_setup", Action: Errno, Errno: unix.ENOSYS},
		{Syscall: "sendto", Action: Notify, Conds: []Cond{{Arg: 4, Value: 0, NotEqual: true}}},
		{Syscall: "socket", Action: Errno, Errno: unix.EPERM, Conds: []Cond{{Arg: 0, Mask: 0xffffffff, Value: unix.AF_PACKET}}},
	}
	mainProg, err := ExportBPF(rules)
	if err != nil {
		t.Fatal(err)
	}
	guard, err := ExportX32GuardBPF()
	if err != nil {
		t.Fatal(err)
	}
	merged := WithX32Guard(mainProg)
	// The strictest of two results: kill < trap < errno < user_notif < ... < allow
	// in the kernel's order (seccomp_run_filters keeps the lowest action).
	strictest := func(a, b uint32) uint32 {
		if a&0xffff0000 == retKillProcess || b&0xffff0000 == retKillProcess {
			return retKillProcess
		}
		if a&0xffff0000 < b&0xffff0000 {
			return a
		}
		return b
	}
	var cases []Data
	for _, arch := range []uint32{unix.AUDIT_ARCH_X86_64, unix.AUDIT_ARCH_I386, unix.AUDIT_ARCH_AARCH64} {
		for _, name := range []string{"connect", "getpid", "io_uring_setup", "sendto", "socket"} {
			n := nr(t, name)
			for _, num := range []int32{n, x32Bit | n} {
				for _, args := range [][6]uint64{{}, {unix.AF_PACKET}, {4: 0x1000}, {1<<32 | unix.AF_PACKET}} {
					cases = append(cases, Data{Nr: num, Arch: arch, Args: args})
				}
			}
		}
	}
	for _, d := range cases {
		want := strictest(run(t, guard, d), run(t, mainProg, d))
		if got := run(t, merged, d); got != want {
			t.Errorf("%+v: merged %#x, two filters %#x", d, got, want)
		}
	}
	if got := run(t, merged, Data{Nr: x32Bit | nr(t, "getpid"), Arch: unix.AUDIT_ARCH_X86_64}); got != retKillProcess {
		t.Errorf("x32 getpid: %#x, want kill", got)
	}
}
