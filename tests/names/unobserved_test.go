package names_test

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestUnobservableLookupsOfDeniedNames: when the policy denies a name, a
// lookup the forwarder cannot carry (a socket bound without a port, one
// made before a setuid, one bound to a device, a send whose IP_PKTINFO
// picks its interface, a front whose admissions are full) is denied rather
// than sent to the resolver unjudged, as root and as nobody; MPTCP goes
// through the TCP front and gets the sandbox's NXDOMAIN. The principle: a
// denied name never reaches the resolver. What is counted is the server's
// own log of queries for the denied name (a glob, which the sandbox never
// resolves at load): none may arrive. Controls: natively every mode's
// query arrives (the probe can fail), and under a policy that denies no
// name the unobservable lookups are made as they are.
func TestUnobservableLookupsOfDeniedNames(t *testing.T) {
	e := setup(t)
	deny := e.policy("default: deny\nrules:\n" + resolvers + "  - deny: \"*.ads.test\"\n")
	probe := filepath.Join("testdata", "dnsleak.py")
	abs, _ := filepath.Abs(probe)
	arrived := func() int {
		n := 0
		for _, q := range e.dns.Queries() {
			if strings.Contains(q, "x.ads.test") {
				n++
			}
		}
		return n
	}
	asNobody := []string{"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "/usr/bin/python3"}
	for _, mode := range []string{"udp-noport", "tcp-noport", "mptcp", "setuid", "device", "pktinfo", "exhaust", "udp",
		"nobody/udp-noport", "nobody/tcp-noport", "nobody/mptcp", "nobody/pktinfo", "nobody/udp"} {
		t.Run(mode, func(t *testing.T) {
			prog := []string{"python3", abs, mode, "x.ads.test"}
			if m, ok := strings.CutPrefix(mode, "nobody/"); ok {
				mode = m
				prog = append(asNobody[:len(asNobody):len(asNobody)], abs, mode, "x.ads.test")
			}
			e.dns.Reset()
			native := e.run(prog...)
			if arrived() != 1 || !strings.Contains(native.Stdout, "rcode 0 answers 1") {
				t.Fatalf("natively: %v %q, %d queries arrived (the probe proves nothing)", native, native.Stdout, arrived())
			}
			e.dns.Reset()
			r := e.sandboxed([]string{"--policy", deny}, prog...)
			if arrived() != 0 || strings.Contains(r.Stdout, "rcode 0") {
				t.Errorf("a denied name reached the resolver: %q, %d queries arrived\n%s", r.Stdout, arrived(), r.Stderr)
			}
			switch mode {
			case "exhaust":
				// Denied, or (a port reused by a socket the front still
				// admits) answered by the forwarder: either way unsent.
				if !strings.Contains(r.Stdout, "PermissionError 13") && !strings.Contains(r.Stdout, "rcode 3") {
					t.Errorf("past the front's admissions: %q, want EACCES or NXDOMAIN", r.Stdout)
				}
			case "mptcp", "udp":
				if !strings.Contains(r.Stdout, "rcode 3") { // NXDOMAIN, from the forwarder
					t.Errorf("through the front: %q, want NXDOMAIN\n%s", r.Stdout, r.Stderr)
				}
			default:
				if !strings.Contains(r.Stdout, "PermissionError 13") {
					t.Errorf("an unobservable lookup: %q, want EACCES\n%s", r.Stdout, r.Stderr)
				}
			}
		})
	}
	// Control: with no name denied, the unobservable lookups are made.
	open := e.policy("default: deny\nrules:\n" + resolvers)
	for _, mode := range []string{"udp-noport", "setuid", "device", "pktinfo"} {
		e.dns.Reset()
		r := e.sandboxed([]string{"--policy", open}, "python3", abs, mode, "x.ads.test")
		if arrived() != 1 || !strings.Contains(r.Stdout, "rcode 0 answers 1") {
			t.Errorf("%s with no name denied: %q, %d arrived\n%s", mode, r.Stdout, arrived(), r.Stderr)
		}
	}
}
