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
