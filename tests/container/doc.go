// Package container runs the sandbox as a container's entrypoint, without a
// container engine: each test starts
//
//	unshare --pid --fork --mount-proc --net --kill-child -- \
//	  sh -c 'ip link set lo up && exec "$@"' sh \
//	  dockerprofile -add pidfd_getfd,kcmp -- sandbox run [FLAGS] -- PROGRAM
//
// so that the sandbox is PID 1 of a new PID namespace, with its own /proc,
// in a network namespace holding only lo, without any capability (the user
// stays uid 0, a container's root), with no_new_privs and under Docker's
// default seccomp profile (dockerprofile/profile.go) plus the syscalls the
// sandbox needs. The checks: reaping of double-forked daemons, signals sent
// to PID 1, the grace period, exit statuses, policies, JSON logs, and that
// the stock Docker profile (without pidfd_getfd) makes connects fail closed.
//
// The tests need root (they skip otherwise), unshare (util-linux), iproute2,
// gcc and libseccomp-dev:
//
//	go test ./tests/container/ -v
//
// SANDBOX_BIN uses a prebuilt sandbox instead of building ./cmd/sandbox.
package container
