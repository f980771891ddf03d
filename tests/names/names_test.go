// Package names_test proves rules by host name that follow the program's
// own DNS lookups, the DNS denial of denied names, and sandbox learn, with
// real clients (glibc through getent and curl, Python, dig, Go's own
// resolver, git) against a DNS server and web servers in a fresh network
// namespace pair (tests/internal/dnstest). Nothing is forwarded anywhere.
package names_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sandbox/tests/internal/dnstest"
	"sandbox/tests/internal/nettest"
)

func TestMain(m *testing.M) { os.Exit(nettest.Main(m)) }

const zone = `web.test        60 A     10.231.0.2
web.test        60 AAAA  fd00:231::2
www.web.test    60 CNAME edge.cdn.test
edge.cdn.test   60 A     10.231.0.2
short.web.test  1  A     10.231.0.2
good.web.test   60 A     10.231.0.2
bad.web.test    60 A     10.231.0.2
big.web.test    60 A     10.231.0.2
x.bank.test     60 A     10.231.0.2
x.ads.test      60 A     10.231.0.2
y.quiet.test    60 A     10.231.0.2
`

// resolvers allows the test's DNS server, over UDP and TCP.
const resolvers = "  - allow: [udp:10.231.0.2:53, tcp:10.231.0.2:53]\n"

type env struct {
	t   *testing.T
	n   *nettest.Netns
	dns *dnstest.Server
	web *dnstest.Web
	sb  string
	dir string
}

func setup(t *testing.T, dnsArgs ...string) *env {
	t.Helper()
	n := nettest.NewNetns(t)
	// A directory every user can read: some runs are as nobody.
	dir, err := os.MkdirTemp("", "names-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	e := &env{t: t, n: n, sb: nettest.BuildSandbox(t), dir: dir}
	e.dns = dnstest.Start(t, n, zone, append([]string{"-truncate", "big.web.test"}, dnsArgs...)...)
	e.web = dnstest.StartHTTP(t, n, "web.test", "www.web.test")
	dnstest.UseResolver(t, n, "", "")
	return e
}

// policy writes a policy file and returns its path.
func (e *env) policy(text string) string {
	e.t.Helper()
	p := filepath.Join(e.dir, "policy.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) run(argv ...string) nettest.Result {
	return e.n.Run(60*time.Second, argv...)
}

// sandboxed runs argv under `sandbox run` with flags.
func (e *env) sandboxed(flags []string, argv ...string) nettest.Result {
	return e.run(append(append(append([]string{e.sb, "run"}, flags...), "--"), argv...)...)
}

func (e *env) requests() int { return len(e.web.Requests()) }

func curl(url string) []string {
	return []string{"curl", "-sS", "--max-time", "10", url}
}

func TestRulesByNameFollowTheLookups(t *testing.T) {
	e := setup(t)
	// A glob is never resolved at load: only the program's own lookup can
	// make it match. The CNAME chain names the address both names.
	pol := e.policy("default: deny\nrules:\n" + resolvers + "  - allow: \"tcp:*.cdn.test:8080\"\n")
	gores := nettest.GoBuild(t, "./tests/internal/dnstest/cmd/goresolve")
	clients := map[string][]string{
		"curl":   curl("http://www.web.test:8080/"),
		"go":     {gores, "www.web.test", "8080"},
		"python": {"python3", "-c", "import urllib.request as u; print(u.urlopen('http://www.web.test:8080/', timeout=10).read().decode(), end='')"},
	}
	for name, argv := range clients {
		t.Run(name, func(t *testing.T) {
			before := e.requests()
			r := e.sandboxed([]string{"--policy", pol, "-v"}, argv...)
			if r.ExitCode != 0 || !strings.Contains(strings.ToLower(r.Stdout), "ok") {
				t.Fatalf("allowed by name through the CNAME chain: %v\n%s", r, r.Stdout)
			}
			if !strings.Contains(r.Stderr, "name=www.web.test") || !strings.Contains(r.Stderr, `dst="tcp:10.231.0.2:8080"`) &&
				!strings.Contains(r.Stderr, "dst=tcp:10.231.0.2:8080") {
				t.Errorf("the log does not name the address:\n%s", r.Stderr)
			}
			if e.requests() != before+1 {
				t.Errorf("%d requests arrived, want 1", e.requests()-before)
			}
			// Control: without the observed lookup nothing names the
			// address, and the same program is denied, nothing arrives.
			before = e.requests()
			r = e.sandboxed([]string{"--policy", pol, "--observe-dns", "off"}, argv...)
			if r.ExitCode == 0 || e.requests() != before || !strings.Contains(r.Stderr, "connect denied") {
				t.Errorf("without observing DNS the glob rule still matched: %v, %d arrived", r, e.requests()-before)
			}
		})
	}
}

func TestNameExpiresAfterTTLAndGrace(t *testing.T) {
	e := setup(t)
	pol := e.policy("default: deny\nrules:\n" + resolvers + "  - allow: \"tcp:*.web.test:8080\"\n")
	// short.web.test has a TTL of 1 s: with a grace of 1 s, the address
	// is no longer covered 3 s later, unless looked up again.
	script := `curl -sS --max-time 5 http://short.web.test:8080/ && sleep 3 &&
{ curl -sS --max-time 5 http://10.231.0.2:8080/; echo "direct=$?"; } &&
curl -sS --max-time 5 http://short.web.test:8080/`
	r := e.sandboxed([]string{"--policy", pol, "--dns-grace", "1s"}, "sh", "-c", script)
	if r.ExitCode != 0 || r.Stdout != "ok\ndirect=7\nok\n" {
		t.Fatalf("want ok, the expired address denied (curl 7), ok after a new lookup: %v\n%q", r, r.Stdout)
	}
	if !strings.Contains(r.Stderr, "connect denied") {
		t.Errorf("no denial logged:\n%s", r.Stderr)
	}
	// Control: within the grace the address is still covered.
	r = e.sandboxed([]string{"--policy", pol, "--dns-grace", "60s"}, "sh", "-c", script)
	if r.ExitCode != 0 || r.Stdout != "ok\nok\ndirect=0\nok\n" {
		t.Errorf("with a 60 s grace the address should stay covered: %v\n%q", r, r.Stdout)
	}
}

func TestSharedAddressAndDeniedNames(t *testing.T) {
	e := setup(t)
	// good and bad share one address. bad is denied in DNS itself; good,
	// allowed first, is allowed to a program that looked it up (a deny by
	// name keeps its load-time addresses: after it, good would be denied).
	pol := e.policy("default: deny\nrules:\n" + resolvers + `  - allow: tcp:good.web.test:8080
  - deny: bad.web.test
  - deny: "*.ads.test"
  - deny: "*.quiet.test"
    dns: refused
  - allow: "tcp:*.web.test:8080"
`)
	r := e.sandboxed([]string{"--policy", pol}, curl("http://good.web.test:8080/")...)
	if r.ExitCode != 0 || r.Stdout != "ok\n" {
		t.Fatalf("good.web.test: %v", r)
	}
	gores := nettest.GoBuild(t, "./tests/internal/dnstest/cmd/goresolve")
	for _, tt := range []struct {
		name string
		argv []string
		code int
		out  string // in stdout or stderr
	}{
		{"getent", []string{"getent", "ahostsv4", "x.ads.test"}, 2, ""},
		{"curl", curl("http://x.ads.test:8080/"), 6, "Could not resolve host: x.ads.test"},
		{"python", []string{"python3", "-c", "import socket\ntry: socket.getaddrinfo('x.ads.test', 80)\nexcept socket.gaierror as e: print(e.errno)"}, 0, "-2"},
		{"go", []string{gores, "x.ads.test", "8080"}, 2, "resolve error: notfound"},
		{"dig", []string{"dig", "+tries=1", "x.ads.test"}, 0, "status: NXDOMAIN"},
		{"dig-refused", []string{"dig", "+tries=1", "y.quiet.test"}, 0, "status: REFUSED"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.argv[0] == "dig" {
				if _, err := os.Stat("/usr/bin/dig"); err != nil {
					t.Skip("dig is missing: install bind9-dnsutils")
				}
			}
			e.dns.Reset()
			r := e.sandboxed([]string{"--policy", pol}, tt.argv...)
			if r.ExitCode != tt.code || !strings.Contains(r.Stdout+r.Stderr, tt.out) {
				t.Errorf("%v, want exit %d and %q", r, tt.code, tt.out)
			}
			for _, q := range e.dns.Queries() {
				if strings.Contains(q, "ads.test") || strings.Contains(q, "quiet.test") {
					t.Errorf("a denied lookup reached the resolver: %s", q)
				}
			}
			if !strings.Contains(r.Stderr, "dns: lookup denied") || !strings.Contains(r.Stderr, "rule=") {
				t.Errorf("the denial is not logged with its rule:\n%s", r.Stderr)
			}
		})
	}
	// bad.web.test is denied in DNS too (its load-time lookup aside).
	r = e.sandboxed([]string{"--policy", pol}, curl("http://bad.web.test:8080/")...)
	if r.ExitCode != 6 || !strings.Contains(r.Stderr, "Could not resolve host: bad.web.test") {
		t.Errorf("bad.web.test: %v", r)
	}
	// The twin: a name the resolver itself does not know fails the same way.
	native := e.run("getent", "ahostsv4", "gone.web.test")
	if native.ExitCode != 2 {
		t.Errorf("native NXDOMAIN: %v", native)
	}
}

func TestTCPFallbackAfterTruncation(t *testing.T) {
	e := setup(t)
	pol := e.policy("default: deny\nrules:\n" + resolvers + "  - allow: \"tcp:*.web.test:8080\"\n")
	r := e.sandboxed([]string{"--policy", pol}, curl("http://big.web.test:8080/")...)
	if r.ExitCode != 0 || r.Stdout != "ok\n" {
		t.Fatalf("the name came only over TCP, after a truncated UDP answer: %v", r)
	}
	var udp, tcp bool
	for _, q := range e.dns.Queries() {
		udp = udp || strings.HasPrefix(q, "query udp A big.web.test.")
		tcp = tcp || strings.HasPrefix(q, "query tcp A big.web.test.")
	}
	if !udp || !tcp {
		t.Errorf("want a UDP query and its TCP retry: %q", e.dns.Queries())
	}
	if _, err := os.Stat("/usr/bin/dig"); err == nil {
		native := e.run("dig", "+tries=1", "+short", "big.web.test")
		sb := e.sandboxed([]string{"--policy", pol}, "dig", "+tries=1", "+short", "big.web.test")
		if native.Stdout != sb.Stdout || sb.ExitCode != native.ExitCode || native.Stdout != "10.231.0.2\n" {
			t.Errorf("dig natively %q (%d), sandboxed %q (%d)", native.Stdout, native.ExitCode, sb.Stdout, sb.ExitCode)
		}
	}
}

// TestLookupsSeeTheSameAnswers: each client prints the same thing natively
// and with every lookup going through the forwarder, including a resolver
// that never answers.
func TestLookupsSeeTheSameAnswers(t *testing.T) {
	e := setup(t)
	gores := nettest.GoBuild(t, "./tests/internal/dnstest/cmd/goresolve")
	probes := [][]string{
		{"getent", "ahosts", "web.test"},
		{"getent", "ahostsv4", "www.web.test"},
		{"getent", "hosts", "big.web.test"},
		{"python3", "-c", "import socket; print(sorted(set(a[4][0] for a in socket.getaddrinfo('www.web.test', 80))))"},
		{gores, "www.web.test", "8080"},
		{"getent", "ahostsv4", "gone.web.test"},
	}
	if _, err := os.Stat("/usr/bin/dig"); err == nil {
		probes = append(probes, []string{"dig", "+short", "+tries=1", "www.web.test"}, []string{"dig", "+short", "+tcp", "web.test", "AAAA"})
	}
	// musl's resolver sends from an unconnected socket and takes only
	// answers whose source is the nameserver it asked.
	musl := nettest.CompileMusl(t, filepath.Join("testdata", "resolve.c"))
	probes = append(probes, []string{musl, "www.web.test", "web.test", "gone.web.test", "big.web.test"},
		// dnspython does the same (dns.query.udp checks the source);
		// Debian's python3-dnspython is for Debian's python3.
		[]string{"/usr/bin/python3", "-c", "import dns.resolver as r; print(sorted(a.to_text() for a in r.resolve('www.web.test', 'A', lifetime=5)))"})
	for _, argv := range probes {
		native := e.run(argv...)
		sb := e.sandboxed([]string{"--allow-all", "--observe-dns", "on"}, argv...)
		if argv[0] == musl || argv[0] == "/usr/bin/python3" {
			if !strings.Contains(native.Stdout, "10.231.0.2") {
				t.Fatalf("%q natively: %v\n%s%s(the comparison proves nothing)", argv, native, native.Stdout, native.Stderr)
			}
		}
		if native.Stdout != sb.Stdout || native.ExitCode != sb.ExitCode {
			t.Errorf("%q: natively exit %d\n%s\nsandboxed exit %d\n%s%s", argv, native.ExitCode, native.Stdout, sb.ExitCode, sb.Stdout, sb.Stderr)
		}
	}
}

func TestSilentResolver(t *testing.T) {
	e := setup(t, "-silent")
	gores := nettest.GoBuild(t, "./tests/internal/dnstest/cmd/goresolve")
	for _, argv := range [][]string{{"getent", "ahostsv4", "web.test"}, {gores, "web.test", "8080"}} {
		start := time.Now()
		native := e.run(argv...)
		nd := time.Since(start)
		start = time.Now()
		sb := e.sandboxed([]string{"--allow-all", "--observe-dns", "on"}, argv...)
		sd := time.Since(start)
		// Go's message quotes the socket's addresses, which show the
		// front (a known difference): compare up to the error's kind.
		kind := func(s string) string { f := strings.SplitN(s, ":", 3); return strings.Join(f[:min(2, len(f))], ":") }
		if native.ExitCode == 0 || sb.ExitCode != native.ExitCode || kind(sb.Stdout) != kind(native.Stdout) {
			t.Errorf("%q: natively %v %q, sandboxed %v %q", argv, native, native.Stdout, sb, sb.Stdout)
		}
		// Both give up after the resolver's timeout (timeout:1 attempts:2).
		if sd < nd/2 || sd > nd*2+time.Second {
			t.Errorf("%q: gave up after %v natively, %v sandboxed", argv, nd, sd)
		}
	}
}

// TestLookupsCarryTheProgramsIdentity: the forwarder's upstream query is
// made with the program's identity, never the sandbox's (root's): an owner
// match that drops nobody's DNS drops the observed lookups of a program
// running as nobody (no query reaches the server), as natively. Control: as
// root, whom the rule spares, the same lookup is answered.
func TestLookupsCarryTheProgramsIdentity(t *testing.T) {
	e := setup(t)
	for _, proto := range []string{"udp", "tcp"} {
		rule := []string{"OUTPUT", "-p", proto, "--dport", "53", "-m", "owner", "--uid-owner", "65534", "-j", "DROP"}
		e.n.MustRun(t, append([]string{"iptables", "-A"}, rule...)...)
		t.Cleanup(func() { e.n.Run(10*time.Second, append([]string{"iptables", "-D"}, rule...)...) })
	}
	for _, tcp := range []bool{false, true} {
		dig := []string{"dig", "+short", "+tries=1", "+time=1", "web.test", "A"}
		if tcp {
			dig = append(dig, "+tcp")
		}
		nobody := append([]string{"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"}, dig...)
		flags := []string{"--allow-all", "--observe-dns", "on"}
		e.dns.Reset()
		native := e.run(nobody...)
		sb := e.sandboxed(flags, nobody...)
		// Over TCP the program's connect to the front succeeds and the
		// front's onward one does not (the known difference of a TCP
		// front): dig says "communications error" for "connection failed".
		same := sb.Stdout == native.Stdout || tcp && strings.HasSuffix(sb.Stdout, "no servers could be reached\n")
		if native.Stdout == "10.231.0.2\n" || !same || len(e.dns.Queries()) != 0 {
			t.Errorf("tcp=%v as nobody: natively %q, sandboxed %q; %d queries reached the server\n%s", tcp, native.Stdout, sb.Stdout, len(e.dns.Queries()), sb.Stderr)
		}
		if r := e.sandboxed(flags, dig...); r.Stdout != "10.231.0.2\n" {
			t.Errorf("tcp=%v control, as root: %q\n%s", tcp, r.Stdout, r.Stderr)
		}
	}
	// A root process looks up first, then its child as nobody: from the
	// same port (the forwarder must not reuse the upstream it made for
	// root's socket) and from another, with the resolver under a fault
	// (the relay's onward socket, and the upstream behind it, are the
	// child's own). The child's query must not arrive, as natively.
	probe, _ := filepath.Abs(filepath.Join("testdata", "identity.py"))
	arrived := func() int {
		n := 0
		for _, q := range e.dns.Queries() {
			if strings.Contains(q, "good.web.test") {
				n++
			}
		}
		return n
	}
	for _, tt := range []struct {
		name  string
		args  []string
		flags []string
	}{
		{"same port", []string{"40001"}, []string{"--allow-all", "--observe-dns", "on"}},
		{"under a fault", []string{"0"}, []string{"--fault", "udp:10.231.0.2:53=latency:1ms", "--allow-all", "--observe-dns", "on"}},
		{"tcp under a fault", []string{"0", "tcp"}, []string{"--fault", "tcp:10.231.0.2:53=latency:1ms", "--allow-all", "--observe-dns", "on"}},
	} {
		e.dns.Reset()
		native := e.run(append([]string{"python3", probe}, tt.args...)...)
		if native.Stdout != "child: no answer\n" || arrived() != 0 {
			t.Fatalf("%s natively: %q, %d arrived", tt.name, native.Stdout, arrived())
		}
		e.dns.Reset()
		r := e.sandboxed(tt.flags, append([]string{"python3", probe}, tt.args...)...)
		if r.Stdout != native.Stdout || arrived() != 0 {
			t.Errorf("%s: the child's lookup left as root: %q, %d arrived\n%s", tt.name, r.Stdout, arrived(), r.Stderr)
		}
	}
}

// TestOwnResolverNamesNothing: a program that answers its own lookups
// cannot make an allowed name cover any address it likes. The principle: a
// name is vouched for only by a resolver the tree does not control.
func TestOwnResolverNamesNothing(t *testing.T) {
	e := setup(t)
	// A copy nobody may run (the build cache is root's).
	b, err := os.ReadFile(nettest.GoBuild(t, "./tests/internal/dnstest/cmd/dnsd"))
	if err != nil {
		t.Fatal(err)
	}
	dnsd := filepath.Join(e.dir, "dnsd")
	if err := os.WriteFile(dnsd, b, 0o755); err != nil {
		t.Fatal(err)
	}
	zoneFile := filepath.Join(e.dir, "own.zone")
	os.WriteFile(zoneFile, []byte("x.bank.test 60 A 10.231.0.2\n"), 0o644)
	// The program's tree runs its own resolver at 127.0.0.1:53 and points
	// its resolv.conf there (a private mount namespace, as a root program
	// or a container could arrange).
	own := filepath.Join(e.dir, "resolv.own")
	os.WriteFile(own, []byte("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"), 0o644)
	e.run("sysctl", "-qw", "net.ipv4.ip_unprivileged_port_start=0")
	script := dnsd + " -listen 127.0.0.1:53 -zone " + zoneFile + ` >/dev/null & sleep 0.5
curl -sS --max-time 5 http://x.bank.test:8080/; echo "rc=$?"; kill $!`
	for _, tt := range []struct {
		name, policy string
	}{
		{"self default", "default: self\nrules:\n  - allow: \"tcp:*.bank.test:8080\"\n"},
		{"resolver allowed by a rule", "default: self\nrules:\n  - allow: [udp:127.0.0.1:53, tcp:127.0.0.1:53]\n  - allow: \"tcp:*.bank.test:8080\"\n"},
	} {
		for _, user := range []string{"root", "nobody"} {
			t.Run(tt.name+"/"+user, func(t *testing.T) {
				pol := filepath.Join(e.dir, "own.yaml")
				os.WriteFile(pol, []byte(tt.policy), 0o644)
				argv := []string{"unshare", "-m", "sh", "-c", `mount --bind "$0" /etc/resolv.conf && exec "$@"`, own}
				if user == "nobody" {
					argv = append(argv, "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups")
				}
				before := e.requests()
				r := e.run(append(argv, e.sb, "run", "--policy", pol, "--", "sh", "-c", script)...)
				if !strings.Contains(r.Stdout, "rc=7") || e.requests() != before {
					t.Errorf("the tree's own answer named an address: %v\n%s; %d requests arrived", r, r.Stdout, e.requests()-before)
				}
				// Control: the same program arrives when the address is allowed.
				before = e.requests()
				r = e.run(append(argv, e.sb, "run", "--policy", pol, "--allow", "tcp:10.231.0.2:8080", "--", "sh", "-c", script)...)
				if !strings.Contains(r.Stdout, "ok\nrc=0") || e.requests() != before+1 {
					t.Errorf("control: %v\n%s", r, r.Stdout)
				}
			})
		}
	}
}

// summaryDenials counts the denied rows of a --summary-json file.
func summaryDenials(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Connects []struct {
			Dst, Verdict string
			Count        int
		}
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range s.Connects {
		if c.Verdict != "allow" {
			t.Logf("not allowed: %+v", c)
			n += c.Count
		}
	}
	return n
}

// TestLearnRoundTrip: what learn writes lets the same program run again
// with no denial and the same result, with each client.
func TestLearnRoundTrip(t *testing.T) {
	e := setup(t)
	gores := nettest.GoBuild(t, "./tests/internal/dnstest/cmd/goresolve")
	git := dnstest.StartGitDaemon(t, e.n)
	clients := []struct {
		name string
		argv []string
		rule string
	}{
		{"curl-https", []string{"curl", "-sS", "--max-time", "10", "--cacert", e.web.CAFile, "https://web.test:8443/"}, "allow: tcp:web.test:8443"},
		{"python", []string{"python3", "-c", "import urllib.request as u; print(u.urlopen('http://www.web.test:8080/', timeout=10).read().decode(), end='')"}, "allow: tcp:www.web.test:8080"},
		{"go", []string{gores, "web.test", "8080"}, "allow: tcp:web.test:8080"},
		{"git", []string{"git", "ls-remote", strings.Replace(git, "10.231.0.2", "web.test", 1)}, "allow: tcp:web.test:9418"},
	}
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(e.dir, c.name+".yaml")
			native := e.run(c.argv...)
			if native.ExitCode != 0 {
				t.Fatalf("natively: %v", native)
			}
			l := e.run(append([]string{e.sb, "learn", "--out", out, "--"}, c.argv...)...)
			if l.ExitCode != native.ExitCode || l.Stdout != native.Stdout {
				t.Fatalf("under learn: %v\n%s", l, l.Stdout)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			pol := string(b)
			if !strings.Contains(pol, c.rule) || !strings.Contains(pol, "allow: udp:10.231.0.2:53") || !strings.Contains(pol, "default: deny") {
				t.Errorf("the policy lacks %q or the resolver:\n%s", c.rule, pol)
			}
			if strings.Contains(pol, "tcp:10.231.0.2") || strings.Contains(pol, "tcp:[fd00:231::2]") {
				t.Errorf("a destination reached by name is written by address:\n%s", pol)
			}
			if !strings.Contains(l.Stderr, "DESTINATION") {
				t.Errorf("learn printed no summary:\n%s", l.Stderr)
			}
			sum := filepath.Join(e.dir, c.name+".json")
			r := e.sandboxed([]string{"--policy", out, "--summary-json", sum}, c.argv...)
			if r.ExitCode != native.ExitCode || r.Stdout != native.Stdout {
				t.Errorf("under the learned policy: %v\n%s", r, r.Stdout)
			}
			if n := summaryDenials(t, sum); n != 0 {
				t.Errorf("%d calls denied under the learned policy\n%s", n, pol)
			}
			// Control: the same program under the policy without its rule
			// by name is denied.
			cut := strings.ReplaceAll(pol, c.rule, "deny: tcp:web.test:1")
			os.WriteFile(out, []byte(cut), 0o644)
			r = e.sandboxed([]string{"--policy", out}, c.argv...)
			if r.ExitCode == 0 {
				t.Errorf("without %q the program still ran: %v", c.rule, r)
			}
		})
	}
}

func TestLearnMerge(t *testing.T) {
	e := setup(t)
	pol := filepath.Join(e.dir, "suite.yaml")
	first := curl("http://web.test:8080/")
	second := []string{"curl", "-sS", "--max-time", "10", "--cacert", e.web.CAFile, "https://www.web.test:8443/"}
	if r := e.run(append([]string{e.sb, "learn", "--out", pol, "--"}, first...)...); r.ExitCode != 0 {
		t.Fatal(r)
	}
	// A person's edits survive a merge.
	b, _ := os.ReadFile(pol)
	edited := "# reviewed by the team\n" + string(b)
	os.WriteFile(pol, []byte(edited), 0o644)
	r := e.run(append([]string{e.sb, "learn", "--merge", pol, "--"}, second...)...)
	if r.ExitCode != 0 || !strings.Contains(r.Stderr, "added allow: tcp:www.web.test:8443") {
		t.Fatalf("merge: %v", r)
	}
	if strings.Count(r.Stderr, "added allow:") != 1 {
		t.Errorf("the merge added more than the new destination:\n%s", r.Stderr)
	}
	b, _ = os.ReadFile(pol)
	merged := string(b)
	if !strings.HasPrefix(merged, edited) && !strings.HasPrefix(merged, strings.TrimSuffix(edited, "\n")) {
		t.Errorf("the merge changed what was there:\n--- before\n%s\n--- after\n%s", edited, merged)
	}
	for _, argv := range [][]string{first, second} {
		sum := filepath.Join(e.dir, "m.json")
		if r := e.sandboxed([]string{"--policy", pol, "--summary-json", sum}, argv...); r.ExitCode != 0 || summaryDenials(t, sum) != 0 {
			t.Errorf("%q under the merged policy: %v", argv, r)
		}
	}
	// Nothing new: the file is left as it is.
	r = e.run(append([]string{e.sb, "learn", "--merge", pol, "--"}, first...)...)
	if after, _ := os.ReadFile(pol); r.ExitCode != 0 || string(after) != merged || !strings.Contains(r.Stderr, "nothing new") {
		t.Errorf("a merge with nothing new: %v", r)
	}
}

// TestLearnRefusesWhatItCannotWrite: a policy that could not be written is
// found before PROGRAM runs, with the cause and the fix.
func TestLearnRefusesWhatItCannotWrite(t *testing.T) {
	sb := nettest.BuildSandbox(t)
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("rules:\n  - allow: tcp:1.2.3.4:99999\n"), 0o644)
	for _, tt := range []struct {
		name  string
		flags []string
		want  string
	}{
		{"missing directory", []string{"--out", filepath.Join(dir, "no/such/p.yaml")}, "does not exist"},
		{"missing merge file", []string{"--merge", filepath.Join(dir, "none.yaml")}, "--merge: open"},
		{"invalid merge file", []string{"--merge", bad}, bad + ":2:"},
	} {
		r := nettest.Run(30*time.Second, append(append([]string{sb, "learn"}, tt.flags...), "--", "touch", marker)...)
		if _, err := os.Stat(marker); err == nil || r.ExitCode != 125 || !strings.Contains(r.Stderr, tt.want) {
			t.Errorf("%s: %v (PROGRAM ran: %v), want 125 and %q before PROGRAM runs", tt.name, r, err == nil, tt.want)
		}
	}
	// Without --out: sandbox.learned.yaml in the working directory, never
	// overwritten.
	cmd := func(argv ...string) nettest.Result {
		return nettest.Run(30*time.Second, append([]string{"sh", "-c", `cd "$0" && exec "$@"`, dir}, argv...)...)
	}
	if r := cmd(sb, "learn", "--", "true"); r.ExitCode != 0 || !strings.Contains(r.Stderr, "wrote sandbox.learned.yaml") {
		t.Fatalf("first learn: %v", r)
	}
	if r := cmd(sb, "learn", "--", "touch", marker); r.ExitCode != 125 || !strings.Contains(r.Stderr, "--merge sandbox.learned.yaml") {
		t.Errorf("a second learn overwrote the default file: %v", r)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("PROGRAM ran although its policy could not be written")
	}
	// --out - writes to stdout; PROGRAM's own status is learn's.
	r := nettest.Run(30*time.Second, sb, "learn", "--out", "-", "--", "sh", "-c", "exit 3")
	if r.ExitCode != 3 || !strings.HasPrefix(r.Stdout, "# Learned by sandbox learn") || !strings.Contains(r.Stdout, "default: deny") {
		t.Errorf("--out -: %v\n%s", r, r.Stdout)
	}
}

// TestHiddenResolverNamesNothing: the tree's resolver hides its listener
// in an SCM_RIGHTS message while the forwarder connects to it, so that no
// process holds it; its answer still names nothing, because a local
// resolver counts only if its socket is older than PROGRAM.
func TestHiddenResolverNamesNothing(t *testing.T) {
	e := setup(t)
	b, err := os.ReadFile(nettest.GoBuild(t, "./tests/names/testdata/inflight"))
	if err != nil {
		t.Fatal(err)
	}
	prog := filepath.Join(e.dir, "inflight")
	os.WriteFile(prog, b, 0o755)
	e.run("sysctl", "-qw", "net.ipv4.ip_unprivileged_port_start=0")
	pol := e.policy("default: self\nrules:\n  - allow: [tcp:127.0.0.1:53, udp:127.0.0.1:53]\n  - allow: \"tcp:*.bank.test:8080\"\n")
	for _, user := range []string{"root", "nobody"} {
		t.Run(user, func(t *testing.T) {
			var pre []string
			if user == "nobody" {
				pre = []string{"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"}
			}
			before := e.requests()
			r := e.run(append(pre, e.sb, "run", "--policy", pol, "--", prog, "127.0.0.1", "x.bank.test", "10.231.0.2:8080")...)
			if !strings.Contains(r.Stdout, "connect:") || strings.Contains(r.Stdout, "connected") || e.requests() != before {
				t.Errorf("the hidden resolver's answer named an address: %v\n%s", r, r.Stdout)
			}
			// Control: the same program connects when the address is allowed.
			r = e.run(append(pre, e.sb, "run", "--policy", pol, "--allow", "tcp:10.231.0.2:8080", "--", prog, "127.0.0.1", "x.bank.test", "10.231.0.2:8080")...)
			if !strings.Contains(r.Stdout, "connected") {
				t.Errorf("control: %v\n%s", r, r.Stdout)
			}
		})
	}
}

// TestFaultsOnTheResolverKeepItObserved: a resolver under faults is still
// reached through the forwarder: its lookups are still judged and named.
func TestFaultsOnTheResolverKeepItObserved(t *testing.T) {
	e := setup(t)
	pol := e.policy("default: deny\nrules:\n" + resolvers + "  - deny: \"*.ads.test\"\n  - allow: \"tcp:*.web.test:8080\"\n")
	flags := []string{"--fault", "udp:10.231.0.2:53=latency:10ms", "--policy", pol}
	if r := e.sandboxed(flags, "getent", "ahostsv4", "x.ads.test"); r.ExitCode != 2 || !strings.Contains(r.Stderr, "dns: lookup denied") {
		t.Errorf("a denied lookup through a faulted resolver: %v", r)
	}
	for _, q := range e.dns.Queries() {
		if strings.Contains(q, "ads.test") {
			t.Errorf("the denied lookup reached the resolver: %s", q)
		}
	}
	if r := e.sandboxed(flags, curl("http://short.web.test:8080/")...); r.ExitCode != 0 || r.Stdout != "ok\n" {
		t.Errorf("a name through a faulted resolver: %v", r)
	}
	if _, err := os.Stat("/usr/bin/dig"); err == nil {
		tcp := []string{"--fault", "tcp:10.231.0.2:53=latency:10ms", "--policy", pol}
		if r := e.sandboxed(tcp, "dig", "+tcp", "+tries=1", "x.ads.test"); !strings.Contains(r.Stdout, "status: NXDOMAIN") || !strings.Contains(r.Stderr, "dns: lookup denied") {
			t.Errorf("a denied lookup over TCP through a faulted resolver: %v\n%s", r, r.Stdout)
		}
		if r := e.sandboxed(tcp, "dig", "+tcp", "+short", "+tries=1", "web.test"); r.Stdout != "10.231.0.2\n" {
			t.Errorf("a lookup over TCP through a faulted resolver: %v\n%s", r, r.Stdout)
		}
	}
}
