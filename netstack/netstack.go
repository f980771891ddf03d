// Package netstack is the sandbox's model of the network. It decides every
// trapped connect (and, later, every send with a destination).
//
// Invariants:
//   - Pure Go: no seccomp, no syscalls, no errno numbers. The sentry owns the
//     single translation from a Decision to what the program observes.
//   - Decide must be safe for concurrent use and must not block.
package netstack

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Family is the address family of the socket being connected.
type Family uint8

const (
	FamilyOther Family = iota
	FamilyInet
	FamilyInet6
	FamilyUnix
	// FamilyUnspec is an AF_UNSPEC address that the kernel reads as no
	// address at all (a disconnect, or the connected peer): never a
	// destination. An AF_UNSPEC address that the kernel reads as an IPv4 or
	// IPv6 address (a UDP or raw send) is a request of the socket's family.
	FamilyUnspec
)

func (f Family) String() string {
	switch f {
	case FamilyInet:
		return "inet"
	case FamilyInet6:
		return "inet6"
	case FamilyUnix:
		return "unix"
	case FamilyUnspec:
		return "unspec"
	}
	return "other"
}

// SockType is the socket's type, as the kernel reports it (SO_TYPE).
type SockType uint8

const (
	TypeOther SockType = iota
	TypeStream
	TypeDgram
	TypeSeqpacket
)

func (t SockType) String() string {
	switch t {
	case TypeStream:
		return "stream"
	case TypeDgram:
		return "dgram"
	case TypeSeqpacket:
		return "seqpacket"
	}
	return "other"
}

// Op is what the program is doing with the destination.
type Op uint8

const (
	OpConnect Op = iota
	OpSend
)

// UnixAddr is an AF_UNIX destination. For a path, Path is the absolute path
// of the object actually opened (after the caller's cwd, root and symlinks).
type UnixAddr struct {
	Path     string
	Abstract bool   // Name holds the abstract name, without the leading NUL
	Name     string // abstract name
	// Bound is, for a path, the absolute name the socket reached was bound
	// under, when it differs from Path (the socket file was bind-mounted,
	// hard-linked or renamed there). A policy allows the destination only
	// if it allows both names.
	Bound string
}

// Request is one decision to take. It carries only values the sentry has
// already copied out of the tracee: the netstack never sees tracee memory.
type Request struct {
	Op       Op
	Family   Family   // the socket's family (SO_DOMAIN), not the address's
	Type     SockType // the socket's type (SO_TYPE)
	Protocol int      // SO_PROTOCOL, for information
	// Addr is the destination the kernel will use: an unspecified address
	// (0.0.0.0, ::, ::ffff:0.0.0.0) is already resolved to the local
	// address the kernel substitutes, and Written holds what the program
	// wrote. v4-mapped addresses are matched as IPv4.
	Addr    netip.AddrPort
	Written netip.AddrPort
	Unix    UnixAddr
	PID     int
	// Names are the host names the program's own lookups (DNS answers the
	// sentry saw, the hosts file) returned Addr for and that are still
	// valid, separated by spaces, the newest question first: see
	// Names.Lookup. Rules by name match through them. (A string keeps
	// Request comparable.)
	Names string
	// Looked reports that some of Names come from DNS answers (not only
	// from the hosts file): the program's lookups then say what Addr is,
	// and a rule by name no longer matches it through load-time addresses
	// alone (see Dest.Matches).
	Looked bool
	// Broadcast reports whether the socket has SO_BROADCAST set. The virtual
	// topology needs it to answer a datagram to a subnet broadcast address.
	Broadcast bool
}

// Name is the first of r.Names, the name the program most recently looked
// Addr up by; "" if none.
func (r Request) Name() string {
	name, _, _ := strings.Cut(r.Names, " ")
	return name
}

// Dest renders the destination the way policies and logs spell it.
func (r Request) Dest() string {
	switch r.Family {
	case FamilyInet, FamilyInet6:
		proto := "tcp"
		if r.Type == TypeDgram {
			proto = "udp"
		}
		return proto + ":" + r.Addr.String()
	case FamilyUnix:
		if r.Unix.Abstract {
			return "unix:@" + r.Unix.Name
		}
		if r.Unix.Path == "" {
			return "unix:(unnamed)"
		}
		return "unix:" + r.Unix.Path
	case FamilyUnspec:
		return "unspec"
	}
	return r.Family.String()
}

// Action is the kind of verdict.
type Action uint8

const (
	// Allow performs the real connect: pass-through, exactly as native.
	Allow Action = iota
	// Deny refuses locally, as a security module would (EACCES or EPERM).
	Deny
	// Refuse looks like a host with nothing listening (ECONNREFUSED).
	Refuse
	// Unreachable looks like a missing route (ENETUNREACH or EHOSTUNREACH).
	Unreachable
	// Timeout looks like a peer that never answers (ETIMEDOUT).
	Timeout
	// Redirect connects to another real address instead.
	Redirect
)

func (a Action) String() string {
	switch a {
	case Allow:
		return "allow"
	case Deny:
		return "deny"
	case Refuse:
		return "refuse"
	case Unreachable:
		return "unreachable"
	case Timeout:
		return "timeout"
	case Redirect:
		return "redirect"
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// Reason refines an Action. The sentry maps each (Action, Reason) to exactly
// one errno in one place.
type Reason uint8

const (
	ReasonNone Reason = iota
	// Deny reasons.
	ReasonAccess // EACCES: the default for deny
	ReasonPerm   // EPERM
	// Unreachable reasons.
	ReasonNet  // ENETUNREACH
	ReasonHost // EHOSTUNREACH
	// Broadcast without SO_BROADCAST (virtual topology).
	ReasonBroadcast
)

func (r Reason) String() string {
	switch r {
	case ReasonNone:
		return "none"
	case ReasonAccess:
		return "access"
	case ReasonPerm:
		return "perm"
	case ReasonNet:
		return "net"
	case ReasonHost:
		return "host"
	case ReasonBroadcast:
		return "broadcast"
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Decision is the verdict for one Request.
type Decision struct {
	Action   Action
	Reason   Reason
	Timeout  time.Duration  // for Timeout
	Redirect netip.AddrPort // for Redirect
	Rule     string         // the rule that decided, as the user wrote it; "" for the default
	// Delay is how long the program waits before a Refuse or Unreachable
	// verdict shows: a remote peer's round trip, or the ARP failure time of an
	// on-link address that nobody holds (DefaultARPDelay). Zero means at once.
	Delay time.Duration
	// Suggest is, for a default denial, the exact command-line flag that would
	// allow this destination (e.g. "--allow tcp:127.0.0.1:8080"); "" otherwise.
	Suggest string
	// Faults, for an Allow, are what the live connection suffers: the
	// sentry relays it (see Faults).
	Faults *Faults
	// Self reports an allow that rests on the destination being the
	// sandboxed tree's own socket (the "self" default).
	Self bool
}

// Decider decides requests. Implementations must be safe for concurrent use.
type Decider interface {
	Decide(Request) Decision
}

// AllowAll is the pass-through decider: every request is allowed.
type AllowAll struct{}

// Decide implements Decider.
func (AllowAll) Decide(Request) Decision { return Decision{Action: Allow, Rule: "allow-all"} }

var _ Decider = AllowAll{}
