package sentry

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// callerMayClaim mirrors scm_check_creds (net/core/scm.c) for the caller.
// The supervisor sends a Unix socket's SCM_CREDENTIALS itself, so the
// kernel checks the supervisor's pid and capabilities, not the caller's:
// without this check a program whose capabilities were dropped (or that
// switched to another user) could claim any pid, uid or gid through it.
// A claim is the caller's to make when the pid is its own thread group
// (or it has CAP_SYS_ADMIN), the uid is its real, effective or saved uid
// (or CAP_SETUID), the gid likewise (or CAP_SETGID). Malformed messages
// and ids that do not map (-1) are left to the kernel's own EINVAL.
func callerMayClaim(st status, control []byte) bool {
	ok := true
	has := func(c int) bool { return st.CapEff&(1<<c) != 0 }
	walkCmsgs(control, func(off int, h *unix.Cmsghdr) bool {
		if h.Level != unix.SOL_SOCKET || h.Type != unix.SCM_CREDENTIALS || h.Len != uint64(unix.CmsgLen(unix.SizeofUcred)) {
			return true
		}
		u := (*unix.Ucred)(unsafe.Pointer(&control[off+unix.CmsgLen(0)]))
		if u.Uid == ^uint32(0) || u.Gid == ^uint32(0) {
			return true
		}
		pid := int(u.Pid) == st.NSTgid || has(unix.CAP_SYS_ADMIN)
		uid := u.Uid == st.Uid[0] || u.Uid == st.Uid[1] || u.Uid == st.Uid[2] || has(unix.CAP_SETUID)
		gid := u.Gid == st.Gid[0] || u.Gid == st.Gid[1] || u.Gid == st.Gid[2] || has(unix.CAP_SETGID)
		ok = pid && uid && gid
		return ok
	})
	return ok
}

// hasClaim reports whether control carries an SCM_CREDENTIALS message.
func hasClaim(control []byte) bool {
	found := false
	walkCmsgs(control, func(_ int, h *unix.Cmsghdr) bool {
		found = h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_CREDENTIALS
		return !found
	})
	return found
}

// lendSysAdmin lets a send that runs with the caller's credentials
// (asCaller) carry a claim callerMayClaim accepted: the kernel compares the
// claimed pid with the sending thread's, the supervisor's, and wants
// CAP_SYS_ADMIN otherwise. It lends the supervisor's own CAP_SYS_ADMIN for
// that one call and returns the undo.
func (s *Supervisor) lendSysAdmin(c *call) func() {
	if c.st == nil || s.self.CapEff&(1<<unix.CAP_SYS_ADMIN) == 0 {
		return func() {}
	}
	saved := c.st.CapEff
	c.st.CapEff |= 1 << unix.CAP_SYS_ADMIN
	return func() { c.st.CapEff = saved }
}
