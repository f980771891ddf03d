package sentry

import (
	"fmt"

	"golang.org/x/sys/unix"

	"sandbox/seccomp"
)

// handler decides one trapped call. It returns an outcome, never "continue":
// there is no way for a handler to let the kernel run the call unchecked.
type handler func(s *Supervisor, c *call) outcome

// entry is one row of the syscall table: either a handler (the call is
// trapped and decided by the supervisor) or an errno (the filter fails the
// call at once, in the kernel).
type entry struct {
	name    string
	handler handler
	errno   unix.Errno
	conds   []seccomp.Cond // the rule applies only to calls matching these
	// raw marks rules that refuse raw and packet sockets, unless the run
	// allows them (--raw-sockets).
	raw bool
	// userns marks rules that refuse new user namespaces, unless the run
	// allows them (--allow-userns).
	userns bool
	// observe marks an observation (credcache.go): the supervisor notes
	// what the call may change (obsCreds, obsExec, obsRoot) and lets the
	// kernel run it.
	observe int
	// usernsOnly marks rules that are in the filter only when the run
	// allows new user namespaces (--allow-userns).
	usernsOnly bool
	// doc is one line for the README's support matrix.
	doc string
}

// table is the single source of truth for trapped syscalls: the seccomp
// filter, the dispatcher and the support matrix are all derived from it.
var table = []entry{
	{name: "connect", handler: (*Supervisor).handleConnect,
		doc: "decided by the netstack; allowed calls are performed by the supervisor on the caller's own socket"},
	// Only a sendto that carries an address is trapped (the pointer is
	// compared on all 64 bits); a send on a connected socket runs natively.
	{name: "sendto", handler: (*Supervisor).handleSendto, conds: []seccomp.Cond{{Arg: 4, Value: 0, NotEqual: true}},
		doc: "with an address only: decided like connect; the supervisor sends its own copies of the data and the address"},
	// sendmsg's and sendmmsg's address sits behind a pointer the filter
	// cannot follow: every call is trapped and performed by the supervisor.
	{name: "sendmsg", handler: (*Supervisor).handleSendmsg,
		doc: "always trapped (the address is behind a pointer): decided like sendto when it names an address; the supervisor sends its own copies of the address, data and control messages (SCM_RIGHTS descriptors included)"},
	{name: "sendmmsg", handler: (*Supervisor).handleSendmmsg,
		doc: "always trapped: each message as sendmsg; the count and msg_len as Linux gives them"},
	// A program's own Landlock layers must hold for the calls the
	// supervisor performs for it (landlock.go): rulesets and net port rules
	// are made by the supervisor, which then knows them; rule_type is an
	// int: compare 32 bits. Path rules are not trapped.
	{name: "landlock_create_ruleset", handler: (*Supervisor).handleLandlockCreateRuleset,
		doc: "performed by the supervisor with its copy of the attribute; the new ruleset descriptor is installed in the caller (SECCOMP_IOCTL_NOTIF_ADDFD)"},
	{name: "landlock_add_rule", handler: (*Supervisor).handleLandlockAddRule, conds: []seccomp.Cond{{Arg: 1, Mask: 0xffffffff, Value: llRuleNetPort}},
		doc: "LANDLOCK_RULE_NET_PORT only: performed on the supervisor's duplicate of the ruleset with its copy of the rule, and recorded"},
	{name: "landlock_restrict_self", handler: (*Supervisor).handleLandlockRestrictSelf,
		doc: "recorded, then run by the kernel for the caller (CONTINUE: it only takes rights away); performed connects and sends are checked against the caller's layers, as Landlock checks the calling task"},
	// io_uring's IORING_OP_CONNECT and IORING_OP_SENDMSG never pass through
	// seccomp. ENOSYS, as on a kernel without io_uring, makes libraries
	// (liburing, tokio, libuv) fall back to plain syscalls.
	{name: "io_uring_setup", errno: unix.ENOSYS, doc: "ENOSYS: io_uring operations would bypass the filter"},
	{name: "io_uring_enter", errno: unix.ENOSYS, doc: "ENOSYS"},
	{name: "io_uring_register", errno: unix.ENOSYS, doc: "ENOSYS"},
	// Raw and packet sockets reach any peer without connect. EPERM is what
	// a missing CAP_NET_RAW gives. Families are ints: compare 32 bits.
	{name: "socket", errno: unix.EPERM, raw: true, conds: []seccomp.Cond{{Arg: 0, Mask: 0xffffffff, Value: unix.AF_PACKET}},
		doc: "AF_PACKET: EPERM if PROGRAM keeps CAP_NET_RAW (root with --keep-caps) and no --raw-sockets; otherwise left to the kernel"},
	{name: "socket", errno: unix.EPERM, raw: true, conds: []seccomp.Cond{{Arg: 0, Mask: 0xffffffff, Value: unix.AF_INET}, {Arg: 1, Mask: 0xf, Value: unix.SOCK_RAW}},
		doc: "AF_INET SOCK_RAW: EPERM if PROGRAM keeps CAP_NET_RAW (root with --keep-caps) and no --raw-sockets; otherwise left to the kernel"},
	{name: "socket", errno: unix.EPERM, raw: true, conds: []seccomp.Cond{{Arg: 0, Mask: 0xffffffff, Value: unix.AF_INET6}, {Arg: 1, Mask: 0xf, Value: unix.SOCK_RAW}},
		doc: "AF_INET6 SOCK_RAW: EPERM if PROGRAM keeps CAP_NET_RAW (root with --keep-caps) and no --raw-sockets; otherwise left to the kernel"},
	// __sock_create turns AF_INET SOCK_PACKET (obsolete) into AF_PACKET.
	{name: "socket", errno: unix.EPERM, raw: true, conds: []seccomp.Cond{{Arg: 0, Mask: 0xffffffff, Value: unix.AF_INET}, {Arg: 1, Mask: 0xf, Value: unix.SOCK_PACKET}},
		doc: "AF_INET SOCK_PACKET (an AF_PACKET socket): EPERM if PROGRAM keeps CAP_NET_RAW (root with --keep-caps) and no --raw-sockets; otherwise left to the kernel"},
	// AF_XDP sends frames straight to a NIC queue (xsk_create needs
	// CAP_NET_RAW, as packet sockets do).
	{name: "socket", errno: unix.EPERM, raw: true, conds: []seccomp.Cond{{Arg: 0, Mask: 0xffffffff, Value: unix.AF_XDP}},
		doc: "AF_XDP: EPERM if PROGRAM keeps CAP_NET_RAW (root with --keep-caps) and no --raw-sockets; otherwise left to the kernel"},
	// The raw rows above are in the filter only when the program keeps
	// CAP_NET_RAW (--keep-caps as root): otherwise the kernel itself refuses,
	// with its own errno order (EPROTONOSUPPORT before EPERM in inet_create).
	//
	// New user namespaces give a program every capability inside them
	// (Docker's default profile refuses them too). The flag words hold
	// CLONE_NEWUSER in their low 32 bits: a one-bit mask is width-proof.
	{name: "unshare", errno: unix.EPERM, userns: true, conds: []seccomp.Cond{{Arg: 0, Mask: unix.CLONE_NEWUSER, Value: unix.CLONE_NEWUSER}},
		doc: "with CLONE_NEWUSER: EPERM unless --allow-userns"},
	{name: "clone", errno: unix.EPERM, userns: true, conds: []seccomp.Cond{{Arg: 0, Mask: unix.CLONE_NEWUSER, Value: unix.CLONE_NEWUSER}},
		doc: "with CLONE_NEWUSER: EPERM unless --allow-userns"},
	// clone3's flags are behind a pointer: ENOSYS, and glibc (threads,
	// posix_spawn) falls back to clone, as under Docker.
	{name: "clone3", errno: unix.ENOSYS, userns: true,
		doc: "ENOSYS unless --allow-userns (its flags are in memory; libc falls back to clone)"},
	// Joining a user namespace another same-uid process created gives its
	// capabilities. nstype 0 accepts any namespace, a user one included;
	// nstype is an int: compare 32 bits.
	{name: "setns", errno: unix.EPERM, userns: true, conds: []seccomp.Cond{{Arg: 1, Mask: unix.CLONE_NEWUSER, Value: unix.CLONE_NEWUSER}},
		doc: "with CLONE_NEWUSER: EPERM unless --allow-userns"},
	{name: "setns", errno: unix.EPERM, userns: true, conds: []seccomp.Cond{{Arg: 1, Mask: 0xffffffff, Value: 0}},
		doc: "with nstype 0 (any namespace, a user namespace included): EPERM unless --allow-userns"},
	// Options that reroute packets make the wire destination differ from
	// the decided one, for this call and every later untrapped write:
	// IPv6 routing headers (segment routing is unprivileged), sticky or
	// through IPV6_2292PKTOPTIONS's control messages, and IPv4 options
	// (LSRR, SSRR), also on IPv6 sockets for v4-mapped traffic. Level and
	// optname are ints: compare 32 bits.
	{name: "setsockopt", errno: unix.EPERM, conds: []seccomp.Cond{{Arg: 1, Mask: 0xffffffff, Value: unix.IPPROTO_IPV6}, {Arg: 2, Mask: 0xffffffff, Value: unix.IPV6_RTHDR}},
		doc: "IPPROTO_IPV6 IPV6_RTHDR: EPERM (a routing header sends packets via other hosts than the decided one)"},
	{name: "setsockopt", errno: unix.EPERM, conds: []seccomp.Cond{{Arg: 1, Mask: 0xffffffff, Value: unix.IPPROTO_IPV6}, {Arg: 2, Mask: 0xffffffff, Value: unix.IPV6_2292RTHDR}},
		doc: "IPPROTO_IPV6 IPV6_2292RTHDR: EPERM"},
	{name: "setsockopt", errno: unix.EPERM, conds: []seccomp.Cond{{Arg: 1, Mask: 0xffffffff, Value: unix.IPPROTO_IPV6}, {Arg: 2, Mask: 0xffffffff, Value: unix.IPV6_2292PKTOPTIONS}},
		doc: "IPPROTO_IPV6 IPV6_2292PKTOPTIONS: EPERM (sticky control messages, routing headers included)"},
	{name: "setsockopt", errno: unix.EPERM, conds: []seccomp.Cond{{Arg: 1, Mask: 0xffffffff, Value: unix.IPPROTO_IP}, {Arg: 2, Mask: 0xffffffff, Value: unix.IP_OPTIONS}},
		doc: "IPPROTO_IP IP_OPTIONS: EPERM (source routes), on IPv4 and IPv6 sockets"},
	// Observations (credcache.go): calls that change what the supervisor
	// remembers of a caller (its credentials, its root). Each is noted,
	// then run by the kernel for the caller (CONTINUE, as
	// landlock_restrict_self): the answer reads no tracee memory, and the
	// call acts only on the caller itself.
	{name: "setuid", handler: (*Supervisor).handleObserved, observe: obsCreds,
		doc: "noted (the caller's remembered credentials are dropped until its leader is seen alone in its process), then run by the kernel for the caller (CONTINUE)"},
	{name: "setgid", handler: (*Supervisor).handleObserved, observe: obsCreds, doc: "as setuid"},
	{name: "setreuid", handler: (*Supervisor).handleObserved, observe: obsCreds, doc: "as setuid"},
	{name: "setregid", handler: (*Supervisor).handleObserved, observe: obsCreds, doc: "as setuid"},
	{name: "setresuid", handler: (*Supervisor).handleObserved, observe: obsCreds, doc: "as setuid"},
	{name: "setresgid", handler: (*Supervisor).handleObserved, observe: obsCreds, doc: "as setuid"},
	{name: "setfsuid", handler: (*Supervisor).handleObserved, observe: obsCreds, doc: "as setuid"},
	{name: "setfsgid", handler: (*Supervisor).handleObserved, observe: obsCreds, doc: "as setuid"},
	{name: "setgroups", handler: (*Supervisor).handleObserved, observe: obsCreds, doc: "as setuid"},
	{name: "capset", handler: (*Supervisor).handleObserved, observe: obsCreds, doc: "as setuid"},
	// An exec may change credentials even under no_new_privs:
	// cap_bprm_creds_from_file sets the saved and fs ids to the effective
	// ones, and a file with capabilities but no effective bit empties the
	// effective set.
	{name: "execve", handler: (*Supervisor).handleObserved, observe: obsExec,
		doc: "noted (the caller's remembered credentials are read afresh once the exec is over), then run by the kernel for the caller (CONTINUE)"},
	{name: "execveat", handler: (*Supervisor).handleObserved, observe: obsExec, doc: "as execve"},
	{name: "chroot", handler: (*Supervisor).handleObserved, observe: obsRoot,
		doc: "noted (roots are read afresh for every call from then on), then run by the kernel for the caller (CONTINUE)"},
	{name: "pivot_root", handler: (*Supervisor).handleObserved, observe: obsRoot, doc: "as chroot"},
	// Flags are ints: one-bit masks are width-proof. The user-namespace
	// bit is left to the rows above (EPERM) or below (--allow-userns).
	{name: "unshare", handler: (*Supervisor).handleObserved, observe: obsCreds | obsRoot, conds: []seccomp.Cond{{Arg: 0, Mask: unix.CLONE_NEWNS | unix.CLONE_NEWUSER, Value: unix.CLONE_NEWNS}},
		doc: "with CLONE_NEWNS (without CLONE_NEWUSER): as chroot, and the caller's remembered credentials are dropped until its leader is seen alone in its process"},
	{name: "setns", handler: (*Supervisor).handleObserved, observe: obsCreds | obsRoot, conds: []seccomp.Cond{{Arg: 1, Mask: unix.CLONE_NEWNS | unix.CLONE_NEWUSER, Value: unix.CLONE_NEWNS}},
		doc: "with CLONE_NEWNS (without CLONE_NEWUSER): as unshare"},
	// Only with --allow-userns (the EPERM rows above are then left out).
	{name: "unshare", handler: (*Supervisor).handleObserved, observe: obsCreds | obsRoot, usernsOnly: true, conds: []seccomp.Cond{{Arg: 0, Mask: unix.CLONE_NEWUSER, Value: unix.CLONE_NEWUSER}},
		doc: "with CLONE_NEWUSER and --allow-userns: as unshare with CLONE_NEWNS"},
	{name: "setns", handler: (*Supervisor).handleObserved, observe: obsCreds | obsRoot, usernsOnly: true, conds: []seccomp.Cond{{Arg: 1, Mask: unix.CLONE_NEWUSER, Value: unix.CLONE_NEWUSER}},
		doc: "with CLONE_NEWUSER and --allow-userns: as unshare"},
	{name: "setns", handler: (*Supervisor).handleObserved, observe: obsCreds | obsRoot, usernsOnly: true, conds: []seccomp.Cond{{Arg: 1, Mask: 0xffffffff, Value: 0}},
		doc: "with nstype 0 and --allow-userns: as unshare"},
}

// FilterOptions are the run's choices that shape the filter.
type FilterOptions struct {
	// RawSockets leaves raw and packet sockets to the kernel: with
	// --raw-sockets, or when the program holds no CAP_NET_RAW.
	RawSockets  bool
	AllowUserns bool // allow new user namespaces
}

// FilterRules is the seccomp filter the init stage installs, derived from
// the table.
func FilterRules(opts FilterOptions) []seccomp.Rule {
	rules := make([]seccomp.Rule, 0, len(table))
	for _, e := range table {
		if e.raw && opts.RawSockets || e.userns && opts.AllowUserns || e.usernsOnly && !opts.AllowUserns {
			continue
		}
		r := seccomp.Rule{Syscall: e.name, Action: seccomp.Notify, Conds: e.conds}
		if e.handler == nil {
			r.Action, r.Errno = seccomp.Errno, e.errno
		}
		rules = append(rules, r)
	}
	return rules
}

// dispatchTable maps native syscall numbers to handlers: an array, read
// once per notification (a map lookup cost ~0.1 µs of the hot path).
type dispatchTable struct {
	byNr [maxSyscallNr]*entry
	n    int
}

// maxSyscallNr bounds x86_64 syscall numbers (the highest is in the 460s).
const maxSyscallNr = 1024

// get returns the entry for syscall nr.
func (d *dispatchTable) get(nr int32) (*entry, bool) {
	if nr < 0 || nr >= maxSyscallNr || d.byNr[nr] == nil {
		return nil, false
	}
	return d.byNr[nr], true
}

// len is the number of syscalls with a handler.
func (d *dispatchTable) len() int { return d.n }

func newDispatchTable() (*dispatchTable, error) {
	d := &dispatchTable{}
	for i := range table {
		if table[i].handler == nil {
			continue // decided in the filter: never reaches the supervisor
		}
		nr, err := seccomp.SyscallNumber(table[i].name)
		if err != nil {
			return nil, fmt.Errorf("syscall table: %w", err)
		}
		if nr < 0 || nr >= maxSyscallNr {
			return nil, fmt.Errorf("syscall table: %s is number %d, beyond the dispatch array", table[i].name, nr)
		}
		prev, dup := d.get(nr)
		if dup && (prev.observe == 0 || prev.observe != table[i].observe) {
			return nil, fmt.Errorf("syscall table: %s has two handlers", table[i].name)
		}
		if !dup {
			d.n++
		}
		d.byNr[nr] = &table[i]
	}
	return d, nil
}

// SupportMatrix renders the table as Markdown rows for the README.
func SupportMatrix() string {
	s := "| syscall | handling |\n|---|---|\n"
	for _, e := range table {
		s += fmt.Sprintf("| `%s` | %s |\n", e.name, e.doc)
	}
	return s
}
