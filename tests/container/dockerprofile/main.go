// Command dockerprofile runs a command the way Docker runs a container's
// entrypoint, as far as privileges go:
//
//	dockerprofile [-add pidfd_getfd,kcmp] [-caps docker,sys_ptrace] [-no-pidfd-thread] -- CMD [ARGS...]
//	dockerprofile [-add pidfd_getfd,kcmp] -print-json
//
// It drops every capability (bounding set, ambient, effective, permitted,
// inheritable; the user stays what it was: uid 0 remains a root without
// capabilities, as in a container), sets no_new_privs, installs Docker's
// default seccomp profile (profile.go) and execs CMD. -add also allows the
// listed syscalls, as a custom profile would. -caps keeps the listed
// capabilities instead ("docker" is Docker's default set): a root CMD then
// has exactly those, as in `docker run --cap-add`. The profile does not
// follow -caps: add what dockerd would with -add.
//
// -print-json prints the profile (with -add) in the JSON format that
// `docker run --security-opt seccomp=FILE` and Kubernetes' Localhost
// profiles read; examples/docker/seccomp-sandbox.json is
//
//	go run ./tests/container/dockerprofile -add pidfd_getfd,kcmp -print-json
//
// -no-pidfd-thread makes pidfd_open(2) fail with EINVAL whenever flags are
// given, as on kernels before 6.9 (no PIDFD_THREAD): for tests only.
//
// It exists for tests (tests/container) and needs no Docker engine.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

func init() {
	// Capabilities, no_new_privs and a seccomp filter without TSYNC are
	// properties of one thread: set them all on the thread that execs.
	runtime.LockOSThread()
}

func main() {
	add := flag.String("add", "", "comma-separated syscalls to allow in addition to Docker's default profile")
	printJSON := flag.Bool("print-json", false, "print the profile as Docker/OCI seccomp JSON and exit")
	caps := flag.String("caps", "", "comma-separated capabilities to keep (\"docker\": Docker's default set)")
	noPidfdThread := flag.Bool("no-pidfd-thread", false, "make pidfd_open with flags fail with EINVAL, as before Linux 6.9 (tests)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s [-add SYSCALLS] [-no-pidfd-thread] -- CMD [ARGS...]\n       %s [-add SYSCALLS] -print-json\n", os.Args[0], os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	var extra []string
	if *add != "" {
		extra = strings.Split(*add, ",")
	}
	rules := Rules(extra)
	if *printJSON {
		if flag.NArg() != 0 {
			flag.Usage()
			os.Exit(2)
		}
		os.Stdout.Write(ProfileJSON(rules))
		return
	}
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	path, err := exec.LookPath(flag.Arg(0))
	if err != nil {
		fatal(err)
	}
	keep, err := parseCaps(*caps)
	if err != nil {
		fatal(err)
	}
	if err := dropCapabilities(keep); err != nil {
		fatal(err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fatal(fmt.Errorf("PR_SET_NO_NEW_PRIVS: %w", err))
	}
	if err := LoadFilter(rules, *noPidfdThread); err != nil {
		fatal(err)
	}
	err = syscall.Exec(path, flag.Args(), os.Environ())
	fatal(fmt.Errorf("exec %s: %w", path, err))
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "dockerprofile:", err)
	os.Exit(126)
}

// dockerCaps is the capability set Docker gives a container by default
// (moby's oci/caps/defaults.go).
var dockerCaps = []string{"chown", "dac_override", "fsetid", "fowner", "mknod", "net_raw", "setgid",
	"setuid", "setfcap", "setpcap", "net_bind_service", "sys_chroot", "kill", "audit_write"}

var capNumbers = map[string]int{
	"chown": unix.CAP_CHOWN, "dac_override": unix.CAP_DAC_OVERRIDE, "fsetid": unix.CAP_FSETID,
	"fowner": unix.CAP_FOWNER, "mknod": unix.CAP_MKNOD, "net_raw": unix.CAP_NET_RAW,
	"setgid": unix.CAP_SETGID, "setuid": unix.CAP_SETUID, "setfcap": unix.CAP_SETFCAP,
	"setpcap": unix.CAP_SETPCAP, "net_bind_service": unix.CAP_NET_BIND_SERVICE,
	"sys_chroot": unix.CAP_SYS_CHROOT, "kill": unix.CAP_KILL, "audit_write": unix.CAP_AUDIT_WRITE,
	"sys_ptrace": unix.CAP_SYS_PTRACE, "sys_admin": unix.CAP_SYS_ADMIN, "net_admin": unix.CAP_NET_ADMIN,
}

// parseCaps turns "docker,sys_ptrace" into a set of capability numbers.
func parseCaps(list string) (map[int]bool, error) {
	keep := map[int]bool{}
	if list == "" {
		return keep, nil
	}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimPrefix(strings.ToLower(name), "cap_")
		names := []string{name}
		if name == "docker" {
			names = dockerCaps
		}
		for _, n := range names {
			c, ok := capNumbers[n]
			if !ok {
				return nil, fmt.Errorf("-caps: unknown capability %q", n)
			}
			keep[c] = true
		}
	}
	return keep, nil
}

// dropCapabilities empties every capability set of the calling thread but
// for the capabilities in keep, which stay in the bounding, permitted and
// effective sets. The bounding set goes first (PR_CAPBSET_DROP needs
// CAP_SETPCAP), then the ambient set, then capset(2) sets effective,
// permitted and inheritable. An exec then gives uid 0 exactly the bounding
// set, and other users nothing.
func dropCapabilities(keep map[int]bool) error {
	var data [2]unix.CapUserData
	for c := 0; ; c++ {
		if _, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0); errors.Is(err, unix.EINVAL) {
			break // past CAP_LAST_CAP
		}
		if keep[c] {
			data[c/32].Effective |= 1 << (c % 32)
			data[c/32].Permitted |= 1 << (c % 32)
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			return fmt.Errorf("PR_CAPBSET_DROP %d: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("PR_CAP_AMBIENT_CLEAR_ALL: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}
