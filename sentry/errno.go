package sentry

import (
	"golang.org/x/sys/unix"

	"sandbox/netstack"
)

// errnoFor is the one place where a netstack verdict becomes an errno.
// Allow and Redirect have no errno of their own: the kernel's answer to the
// real connect is the result.
func errnoFor(d netstack.Decision) unix.Errno {
	switch d.Action {
	case netstack.Deny:
		switch d.Reason {
		case netstack.ReasonPerm:
			return unix.EPERM
		default:
			return unix.EACCES
		}
	case netstack.Refuse:
		return unix.ECONNREFUSED
	case netstack.Unreachable:
		if d.Reason == netstack.ReasonHost {
			return unix.EHOSTUNREACH
		}
		return unix.ENETUNREACH
	case netstack.Timeout:
		return unix.ETIMEDOUT
	}
	return 0
}

// errnoOn is errnoFor on a socket of the given domain. A Unix socket can
// fail only as a real one can: a destination under unreachable (a '*' rule
// or a default; Unix rules with it are refused at load) is a socket file
// nobody listens on (ECONNREFUSED), and one under timeout whose busy twin
// could not be set up is busy (EAGAIN).
func errnoOn(d netstack.Decision, domain int) unix.Errno {
	if domain == unix.AF_UNIX {
		switch d.Action {
		case netstack.Unreachable:
			return unix.ECONNREFUSED
		case netstack.Timeout:
			return unix.EAGAIN
		}
	}
	return errnoFor(d)
}

// errnoName returns the symbolic name of e ("EACCES"), or "" for success.
func errnoName(e unix.Errno) string {
	if e == 0 {
		return ""
	}
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return e.Error()
}
