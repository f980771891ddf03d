package dnstest_test

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"sandbox/tests/internal/dnstest"
	"sandbox/tests/internal/nettest"
)

func TestMain(m *testing.M) { os.Exit(nettest.Main(m)) }

// zone is the test zone. web.test and alias.test share one address; the
// server of setup truncates big.test over UDP and answers bad.test with
// SERVFAIL.
const zone = `# dnstest zone
web.test       60   A     10.231.0.2
web.test       60   AAAA  fd00:231::2
www.web.test   60   CNAME edge.cdn.test
edge.cdn.test  5    A     10.231.0.2
ttl.test       1234 A     10.231.0.2
alias.test     60   A     10.231.0.2
big.test       60   A     10.231.0.2
v4only.test    60   A     10.231.0.2
dangling.test  60   CNAME nowhere.test
`

// getent ahostsv4's output for a name at the peer's IPv4 address.
func ahostsv4(canonical string) string {
	return "10.231.0.2      STREAM " + canonical + "\n10.231.0.2      DGRAM  \n10.231.0.2      RAW    \n"
}

type env struct {
	n   *nettest.Netns
	dns *dnstest.Server
	web *dnstest.Web
}

// setup makes a fresh network with dnsd (the zone above, -truncate
// big.test, -rcode bad.test=SERVFAIL, and extra dnsd flags), webd with a
// certificate for web.test, www.web.test and alias.test, and the default
// resolv.conf.
func setup(t *testing.T, extra ...string) *env {
	t.Helper()
	n := nettest.NewNetns(t)
	args := append([]string{"-truncate", "big.test", "-rcode", "bad.test=SERVFAIL"}, extra...)
	e := &env{n: n, dns: dnstest.Start(t, n, zone, args...)}
	e.web = dnstest.StartHTTP(t, n, "web.test", "www.web.test", "alias.test")
	dnstest.UseResolver(t, n, "", "")
	return e
}

// run runs argv in the test namespace and reports how long it took.
func (e *env) run(argv ...string) (nettest.Result, time.Duration) {
	start := time.Now()
	r := e.n.Run(20*time.Second, argv...)
	return r, time.Since(start)
}

// want runs argv and fails unless it exits with code and prints stdout.
func (e *env) want(t *testing.T, code int, stdout string, argv ...string) nettest.Result {
	t.Helper()
	r, d := e.run(argv...)
	if r.ExitCode != code || r.Stdout != stdout {
		t.Errorf("%v (%v)\nstdout: %q\nwant exit %d, stdout %q", r, d, r.Stdout, code, stdout)
	}
	return r
}

// queries waits until the server logged n queries matching substr and then
// checks that no more came.
func (e *env) queries(t *testing.T, substr string, n int) []string {
	t.Helper()
	got := e.dns.WaitQueries(t, substr, n)
	time.Sleep(50 * time.Millisecond)
	if again := e.dns.WaitQueries(t, substr, n); len(again) != n {
		t.Errorf("want exactly %d queries matching %q, got:\n%s", n, substr, strings.Join(again, "\n"))
	}
	return got
}

func curl(args ...string) []string {
	return append([]string{"curl", "-sS", "--noproxy", "*", "--max-time", "10"}, args...)
}

func goresolve(t *testing.T, name, port string) []string {
	return []string{nettest.GoBuild(t, "./tests/internal/dnstest/cmd/goresolve"), name, port}
}

// pyResolve prints getaddrinfo's canonical name and sorted addresses, or
// "gaierror ERRNO" (exit 2).
const pyResolve = `
import socket, sys
try:
    ais = socket.getaddrinfo(sys.argv[1], 8080, 0, socket.SOCK_STREAM, 0, socket.AI_CANONNAME)
except socket.gaierror as e:
    print("gaierror", e.errno)
    sys.exit(2)
print("canon", ais[0][3])
for a in sorted({ai[4][0] for ai in ais}):
    print("addr", a)
`

// pyFetch prints the body of the URL argv[1], verified with the CA file
// argv[2] if given, through no proxy.
const pyFetch = `
import ssl, sys, urllib.request
handlers = [urllib.request.ProxyHandler({})]
if len(sys.argv) > 2:
    handlers.append(urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=sys.argv[2])))
print(urllib.request.build_opener(*handlers).open(sys.argv[1], timeout=10).read().decode(), end="")
`

func py(script string, args ...string) []string {
	return append([]string{"python3", "-c", script}, args...)
}

func haveDig() bool {
	_, err := exec.LookPath("dig")
	return err == nil
}

func requireDig(t *testing.T) {
	t.Helper()
	if !haveDig() {
		t.Skip("skipping: dig is not installed: add Debian's dnsutils (bind9-dnsutils) to the CI package list")
	}
}

func requireStrace(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("strace"); err != nil {
		t.Skip("skipping: strace is not installed")
	}
}

func TestGlibc(t *testing.T) {
	e := setup(t)
	e.want(t, 0, ahostsv4("web.test"), "getent", "ahostsv4", "web.test")
	e.queries(t, "udp A web.test. 10.231.0.1:", 1)
	// getent hosts asks for AF_INET6 first.
	e.want(t, 0, "fd00:231::2     web.test\n", "getent", "hosts", "web.test")
	e.queries(t, "udp AAAA web.test.", 1)
	e.want(t, 0, "ok\n", curl("--cacert", e.web.CAFile, "https://web.test:8443/")...)
	e.want(t, 0, "ok\n", curl("http://web.test:8080/")...)
	// A v4-only name: AAAA is NODATA, getent hosts falls back to A.
	e.want(t, 0, "10.231.0.2      v4only.test\n", "getent", "hosts", "v4only.test")
	// curl (glibc's address order) tries the ULA fd00:231::2 first.
	if got := strings.Join(e.web.Requests(), "\n"); !regexp.MustCompile(
		`^request https GET web.test:8443 / \[fd00:231::1\]:\d+\n` +
			`request http GET web.test:8080 / \[fd00:231::1\]:\d+$`).MatchString(got) {
		t.Errorf("webd saw:\n%s", got)
	}
}

func TestPython(t *testing.T) {
	e := setup(t)
	e.want(t, 0, "canon web.test\naddr 10.231.0.2\naddr fd00:231::2\n", py(pyResolve, "web.test")...)
	e.want(t, 0, "ok\n", py(pyFetch, "http://web.test:8080/")...)
	e.want(t, 0, "ok\n", py(pyFetch, "https://web.test:8443/", e.web.CAFile)...)
}

func TestDig(t *testing.T) {
	requireDig(t)
	e := setup(t)
	e.want(t, 0, "10.231.0.2\n", "dig", "+short", "web.test")
	e.want(t, 0, "fd00:231::2\n", "dig", "+short", "web.test", "AAAA")
	// The TTL is the zone's.
	e.want(t, 0, "ttl.test.\t\t1234\tIN\tA\t10.231.0.2\n", "dig", "+noall", "+answer", "ttl.test")
	// NODATA: NOERROR, no answer, the made-up SOA.
	r, _ := e.run("dig", "v4only.test", "AAAA")
	if !strings.Contains(r.Stdout, "status: NOERROR") || !strings.Contains(r.Stdout, "ANSWER: 0, AUTHORITY: 1") ||
		!strings.Contains(r.Stdout, "test.\t\t\t30\tIN\tSOA\tns.test. hostmaster.test. 1 3600 600 86400 30\n") {
		t.Errorf("dig v4only.test AAAA: want NODATA with the SOA:\n%s", r.Stdout)
	}
	// Over IPv6 and over TCP.
	e.want(t, 0, "10.231.0.2\n", "dig", "+short", "@fd00:231::2", "web.test")
	e.want(t, 0, "10.231.0.2\n", "dig", "+short", "+tcp", "web.test")
	e.queries(t, "query tcp A web.test. 10.231.0.1:", 1)
	e.queries(t, "query udp A web.test. [fd00:231::1]:", 1)
}

func TestGoResolver(t *testing.T) {
	e := setup(t)
	e.want(t, 0, "addr 10.231.0.2\naddr fd00:231::2\nHTTP/1.0 200 OK\n", goresolve(t, "web.test", "8080")...)
	e.queries(t, "udp A web.test.", 1)
	e.queries(t, "udp AAAA web.test.", 1)
	if got := e.web.Requests(); len(got) != 1 || !strings.HasPrefix(got[0], "request http GET web.test / 10.231.0.1:") {
		t.Errorf("webd saw %q", got)
	}
	// Nothing listens on 8081.
	e.want(t, 3, "addr 10.231.0.2\naddr fd00:231::2\ndial error: ECONNREFUSED: dial tcp 10.231.0.2:8081: connect: connection refused\n",
		goresolve(t, "web.test", "8081")...)
}

func TestCNAMEChain(t *testing.T) {
	e := setup(t)
	if haveDig() {
		// The answer carries the whole chain.
		e.want(t, 0, "www.web.test.\t\t60\tIN\tCNAME\tedge.cdn.test.\nedge.cdn.test.\t\t5\tIN\tA\t10.231.0.2\n",
			"dig", "+noall", "+answer", "www.web.test")
	}
	// One query per client: nobody chases the CNAME itself.
	e.dns.Reset()
	e.want(t, 0, ahostsv4("edge.cdn.test"), "getent", "ahostsv4", "www.web.test")
	e.queries(t, "query", 1)
	e.want(t, 0, "canon edge.cdn.test\naddr 10.231.0.2\n", py(pyResolve, "www.web.test")...)
	e.want(t, 0, "addr 10.231.0.2\nHTTP/1.0 200 OK\n", goresolve(t, "www.web.test", "8080")...)
	e.want(t, 0, "ok\n", curl("--cacert", e.web.CAFile, "https://www.web.test:8443/")...)
	// A chain into a name that does not exist is NXDOMAIN.
	e.want(t, 2, "", "getent", "ahostsv4", "dangling.test")
}

func TestNXDOMAIN(t *testing.T) {
	e := setup(t)
	for _, c := range []struct {
		code    int
		stdout  string
		queries int // one per address family: no retry, no search list
		argv    []string
	}{
		{2, "", 1, []string{"getent", "ahostsv4", "nothere.test"}},
		{2, "", 2, []string{"getent", "ahosts", "nothere.test"}},
		{6, "", 2, curl("http://nothere.test:8080/")},
		{2, "resolve error: notfound: lookup nothere.test on 10.231.0.2:53: no such host\n", 2, goresolve(t, "nothere.test", "8080")},
		{2, "gaierror -2\n", 2, py(pyResolve, "nothere.test")}, // EAI_NONAME
	} {
		o := e.try(t, "nothere.test", c.argv...)
		t.Logf("%s: %s", c.argv[0], o)
		if o.r.ExitCode != c.code || o.r.Stdout != c.stdout || len(o.queries) != c.queries || o.d > 1800*time.Millisecond {
			t.Errorf("want exit %d, stdout %q, %d queries, fast", c.code, c.stdout, c.queries)
		}
	}
	if c := "curl: (6) Could not resolve host: nothere.test"; !strings.Contains(e.n.Run(10*time.Second, curl("http://nothere.test/")...).Stderr, c) {
		t.Errorf("curl: want %q", c)
	}
	if haveDig() {
		e.want(t, 0, "", "dig", "+short", "nothere.test")
		r, _ := e.run("dig", "nothere.test")
		if !strings.Contains(r.Stdout, "status: NXDOMAIN") || !strings.Contains(r.Stdout, "IN\tSOA\tns.test.") {
			t.Errorf("dig: %s", r.Stdout)
		}
	}
}

// outcome is what one client did.
type outcome struct {
	r       nettest.Result
	d       time.Duration
	queries []string
}

func (o outcome) String() string {
	s := fmt.Sprintf("exit %d after %v, stdout %q, stderr %q", o.r.ExitCode,
		o.d.Round(10*time.Millisecond), o.r.Stdout, strings.TrimSpace(o.r.Stderr))
	if o.queries != nil {
		s += fmt.Sprintf("; %d queries:\n\t%s", len(o.queries), strings.Join(o.queries, "\n\t"))
	}
	return s
}

// try runs argv alone against a reset query log and returns what happened,
// with the queries for name.
func (e *env) try(t *testing.T, name string, argv ...string) outcome {
	t.Helper()
	e.dns.Reset()
	r, d := e.run(argv...)
	time.Sleep(50 * time.Millisecond)
	var qs []string
	for _, q := range e.dns.Queries() {
		if strings.Contains(q, " "+name+". ") {
			qs = append(qs, q)
		}
	}
	if qs == nil {
		qs = []string{}
	}
	return outcome{r, d, qs}
}

// ports returns the distinct source ports of queries.
func ports(queries []string) map[string]bool {
	m := map[string]bool{}
	for _, q := range queries {
		m[q[strings.LastIndex(q, ":")+1:]] = true
	}
	return m
}

func TestSERVFAIL(t *testing.T) {
	e := setup(t)
	check := func(o outcome, code int, stdout string, queries int) {
		t.Helper()
		t.Logf("%s", o)
		if o.r.ExitCode != code || o.r.Stdout != stdout || len(o.queries) != queries || o.d > 1800*time.Millisecond {
			t.Errorf("want exit %d, stdout %q, %d queries, fast", code, stdout, queries)
		}
	}
	// glibc asks the one server attempts (2) times, on one socket.
	o := e.try(t, "bad.test", "getent", "ahostsv4", "bad.test")
	check(o, 2, "", 2)
	check(e.try(t, "bad.test", "getent", "ahosts", "bad.test"), 2, "", 4)
	check(e.try(t, "bad.test", curl("http://bad.test:8080/")...), 6, "", 4)
	check(e.try(t, "bad.test", py(pyResolve, "bad.test")...), 2, "gaierror -3\n", 4) // EAI_AGAIN
	// Go too, but with a new socket for every query.
	o = e.try(t, "bad.test", goresolve(t, "bad.test", "8080")...)
	check(o, 2, "resolve error: temporary: lookup bad.test on 10.231.0.2:53: server misbehaving\n", 4)
	if len(ports(o.queries)) != 4 {
		t.Errorf("Go: want four source ports")
	}
	if haveDig() {
		o := e.try(t, "bad.test", "dig", "bad.test")
		t.Logf("dig: %s", o)
		if !strings.Contains(o.r.Stdout, "status: SERVFAIL") {
			t.Errorf("dig: want status: SERVFAIL")
		}
	}
}

func TestTruncated(t *testing.T) {
	e := setup(t)
	udpThenTCP := func(o outcome, qtype string) {
		t.Helper()
		u := "query udp " + qtype + " big.test. 10.231.0.1:"
		c := "query tcp " + qtype + " big.test. 10.231.0.1:"
		if len(o.queries) < 2 || !strings.HasPrefix(o.queries[0], u) || !strings.HasPrefix(o.queries[1], c) {
			t.Errorf("want a udp then a tcp %s query, got %s", qtype, o)
		}
	}
	o := e.try(t, "big.test", "getent", "ahostsv4", "big.test")
	if o.r.ExitCode != 0 || o.r.Stdout != ahostsv4("big.test") {
		t.Errorf("getent: %s", o)
	}
	udpThenTCP(o, "A")
	// A and AAAA: both again over one TCP connection.
	o = e.try(t, "big.test", "getent", "ahosts", "big.test")
	t.Logf("getent ahosts: %s", o)
	if o.r.ExitCode != 0 || len(o.queries) != 4 {
		t.Errorf("getent ahosts: want 2 udp and 2 tcp queries")
	}
	o = e.try(t, "big.test", goresolve(t, "big.test", "8080")...)
	if o.r.ExitCode != 0 || o.r.Stdout != "addr 10.231.0.2\nHTTP/1.0 200 OK\n" {
		t.Errorf("goresolve: %s", o)
	}
	t.Logf("goresolve: %s", o)
	if n := len(o.queries); n != 4 {
		t.Errorf("goresolve: want udp+tcp for A and AAAA")
	}
	o = e.try(t, "big.test", curl("http://big.test:8080/")...)
	if o.r.ExitCode != 0 || o.r.Stdout != "ok\n" {
		t.Errorf("curl: %s", o)
	}
	if haveDig() {
		o := e.try(t, "big.test", "dig", "big.test")
		if !strings.HasPrefix(o.r.Stdout, ";; Truncated, retrying in TCP mode.\n") ||
			!strings.Contains(o.r.Stdout, "big.test.\t\t60\tIN\tA\t10.231.0.2\n") {
			t.Errorf("dig: %s", o)
		}
		udpThenTCP(o, "A")
	}
}

// TestSilent: a server that never answers. Every client gives up after
// about timeout:1 × attempts:2.
func TestSilent(t *testing.T) {
	e := setup(t, "-silent")
	slow := func(t *testing.T, o outcome) {
		t.Helper()
		t.Logf("%s", o)
		if o.d < 1800*time.Millisecond || o.d > 6*time.Second {
			t.Errorf("want to give up after about 2 s")
		}
	}
	// Alone first, to count its queries: glibc sends A+AAAA twice on one
	// socket.
	o := e.try(t, "web.test", "getent", "ahosts", "web.test")
	slow(t, o)
	if o.r.ExitCode != 2 || len(o.queries) != 4 || len(ports(o.queries)) != 1 {
		t.Errorf("getent: want exit 2 and 4 queries from one port")
	}
	clients := []struct {
		name   string
		code   int
		stdout string
		argv   []string
	}{
		{"getent", 2, "", []string{"getent", "ahostsv4", "web.test"}},
		{"curl", 6, "", curl("http://web.test:8080/")},
		{"python", 2, "gaierror -3\n", py(pyResolve, "web.test")}, // EAI_AGAIN
		{"go", 2, "", goresolve(t, "web.test", "8080")},
	}
	if haveDig() {
		clients = append(clients, struct {
			name   string
			code   int
			stdout string
			argv   []string
		}{"dig", 9, "", []string{"dig", "web.test"}})
	}
	// The rest at once: they take 2 s each.
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r, d := e.run(c.argv...)
			slow(t, outcome{r: r, d: d})
			switch {
			case r.ExitCode != c.code:
				t.Errorf("want exit %d", c.code)
			case c.name == "go":
				if !regexp.MustCompile(`^resolve error: timeout: lookup web.test on 10.231.0.2:53: read udp 10.231.0.1:\d+->10.231.0.2:53: i/o timeout\n$`).MatchString(r.Stdout) {
					t.Errorf("goresolve: want a timeout")
				}
			case c.name == "dig":
				if !strings.Contains(r.Stdout, ";; communications error to 10.231.0.2#53: timed out") ||
					!strings.Contains(r.Stdout, ";; no servers could be reached") {
					t.Errorf("dig: want timeouts")
				}
			case r.Stdout != c.stdout:
				t.Errorf("want stdout %q", c.stdout)
			}
		})
	}
}

// TestReplyFromElsewhere: answers from another port or address of the
// server are never taken (every client uses a connected UDP socket, so
// the kernel drops them), and the clients time out as if the server were
// silent.
func TestReplyFromElsewhere(t *testing.T) {
	for _, from := range []string{"10.231.0.2:5353", "10.231.0.3:53"} {
		t.Run(from, func(t *testing.T) {
			t.Parallel()
			n := nettest.NewNetns(t)
			if strings.HasPrefix(from, "10.231.0.3") {
				n.MustRunPeer(t, "ip", "addr", "add", "10.231.0.3/24", "dev", "veth1")
			}
			e := &env{n: n, dns: dnstest.Start(t, n, zone, "-reply-from", from)}
			dnstest.UseResolver(t, n, "", "")
			argvs := [][]string{{"getent", "ahostsv4", "web.test"}, goresolve(t, "web.test", "80")}
			if haveDig() {
				argvs = append(argvs, []string{"dig", "+short", "web.test"})
			}
			var wg sync.WaitGroup
			for _, argv := range argvs {
				wg.Go(func() {
					r, d := e.run(argv...)
					if r.ExitCode == 0 || d < 1800*time.Millisecond || strings.Contains(r.Stdout, "10.231.0.2\n") {
						t.Errorf("an answer from %s was taken: %v after %v\n%s", from, r, d, r.Stdout)
					}
				})
			}
			wg.Wait()
		})
	}
}

// TestIPv6Nameserver: every client also works with the server's IPv6
// address in resolv.conf.
func TestIPv6Nameserver(t *testing.T) {
	n := nettest.NewNetns(t)
	e := &env{n: n, dns: dnstest.Start(t, n, zone)}
	e.web = dnstest.StartHTTP(t, n, "web.test")
	dnstest.UseResolver(t, n, "nameserver "+nettest.PeerIP6+"\noptions timeout:1 attempts:2\n", "")
	e.want(t, 0, ahostsv4("web.test"), "getent", "ahostsv4", "web.test")
	e.queries(t, "query udp A web.test. [fd00:231::1]:", 1)
	e.want(t, 0, "addr 10.231.0.2\naddr fd00:231::2\nHTTP/1.0 200 OK\n", goresolve(t, "web.test", "8080")...)
	e.want(t, 0, "ok\n", curl("-6", "--cacert", e.web.CAFile, "https://web.test:8443/")...)
	if got := e.web.Requests(); len(got) == 0 || !strings.HasPrefix(got[len(got)-1], "request https GET web.test:8443 / [fd00:231::1]:") {
		t.Errorf("webd saw %q", got)
	}
}

// TestSharedAddress: two names with one address; only the Host header
// (or the TLS server name) tells them apart.
func TestSharedAddress(t *testing.T) {
	e := setup(t)
	e.want(t, 0, ahostsv4("alias.test"), "getent", "ahostsv4", "alias.test")
	e.want(t, 0, "ok\n", curl("http://alias.test:8080/")...)
	e.want(t, 0, "ok\n", curl("--cacert", e.web.CAFile, "https://alias.test:8443/")...)
	e.want(t, 0, "ok\n", curl("http://web.test:8080/")...)
	got := strings.Join(e.web.Requests(), "\n")
	if !regexp.MustCompile(`^request http GET alias.test:8080 / 10.231.0.1:\d+\n` +
		`request https GET alias.test:8443 / 10.231.0.1:\d+\n` +
		`request http GET web.test:8080 / \[fd00:231::1\]:\d+$`).MatchString(got) {
		t.Errorf("webd saw:\n%s", got)
	}
	// The certificate is not for other names at that address.
	r, _ := e.run(curl("--cacert", e.web.CAFile, "--resolve", "other.test:8443:10.231.0.2", "https://other.test:8443/")...)
	if r.ExitCode != 60 {
		t.Errorf("curl for a name the certificate does not have: %v", r)
	}
}

// TestSyscalls records how each client talks to the server, which is what
// a forwarder in between sees.
func TestSyscalls(t *testing.T) {
	requireStrace(t)
	e := setup(t)
	trace := func(argv ...string) string {
		t.Helper()
		full := append([]string{"strace", "-f", "-qq", "-e", "trace=connect,sendto,sendmmsg,sendmsg,write", "-e", "signal=none"}, argv...)
		r, _ := e.run(full...)
		if r.ExitCode != 0 {
			t.Fatalf("%v", r)
		}
		var lines []string
		for _, l := range strings.Split(r.Stderr, "\n") {
			if strings.Contains(l, "10.231.0.2") || strings.Contains(l, "fd00:231::2") ||
				strings.Contains(l, "sendmmsg(") || strings.Contains(l, `\4test\0`) {
				lines = append(lines, l)
			}
		}
		t.Logf("%s:\n%s", argv[0], strings.Join(lines, "\n"))
		return strings.Join(lines, "\n")
	}
	// Lines may be split by "<unfinished ...>": match no results.
	connect53 := regexp.MustCompile(`connect\((\d+), \{sa_family=AF_INET, sin_port=htons\(53\), sin_addr=inet_addr\("10\.231\.0\.2"\)\}, 16`)

	t.Run("glibc", func(t *testing.T) {
		got := trace("getent", "ahosts", "web.test")
		m := connect53.FindStringSubmatch(got)
		// A and AAAA in one sendmmsg on the connected socket.
		if m == nil || !regexp.MustCompile(`sendmmsg\(`+m[1]+`, \[\{msg_hdr=\{msg_name=NULL, .*\\3web\\4test\\0\\0\\1\\0\\1.*\\3web\\4test\\0\\0\\34\\0\\1.*\], 2, MSG_NOSIGNAL\)`).MatchString(got) {
			t.Errorf("getent ahosts: want connect to 10.231.0.2:53 and one sendmmsg of A and AAAA")
		}
		if strings.Contains(got, "sendto(") {
			t.Errorf("getent ahosts: sendto with an address")
		}
	})
	t.Run("go", func(t *testing.T) {
		got := trace(goresolve(t, "web.test", "8080")...)
		// One connected socket per query, written with write(2).
		fds := connect53.FindAllStringSubmatch(got, -1)
		if len(fds) < 2 || !regexp.MustCompile(`write\(\d+, "[^"]*\\3web\\4test\\0\\0\\1\\0\\1`).MatchString(got) ||
			strings.Contains(got, "sendmmsg(") || strings.Contains(got, "sendto(") {
			t.Errorf("goresolve: want connected UDP sockets and write(2)")
		}
	})
	t.Run("dig", func(t *testing.T) {
		requireDig(t)
		got := trace("dig", "+short", "web.test")
		m := connect53.FindStringSubmatch(got)
		if m == nil || !regexp.MustCompile(`sendmmsg\(`+m[1]+`, \[\{msg_hdr=\{msg_name=NULL, `).MatchString(got) {
			t.Errorf("dig: want a connected UDP socket and sendmmsg")
		}
	})
}

func TestGitDaemon(t *testing.T) {
	e := setup(t)
	url := dnstest.StartGitDaemon(t, e.n)
	url = strings.Replace(url, nettest.PeerIP, "web.test", 1)
	if url != "git://web.test:9418/repo.git" {
		t.Fatalf("url %s", url)
	}
	r, _ := e.run("git", "ls-remote", url)
	if r.ExitCode != 0 || !regexp.MustCompile(`^([0-9a-f]{40})\tHEAD\n([0-9a-f]{40})\trefs/heads/main\n$`).MatchString(r.Stdout) {
		t.Errorf("%v\n%s", r, r.Stdout)
	}
	e.queries(t, "query udp A web.test. 10.231.0.1:", 1)
}

// TestServers: dnsd exits 0 on SIGTERM; UseResolver's directory goes at
// the end of the test.
func TestServers(t *testing.T) {
	var dir string
	t.Run("inner", func(t *testing.T) {
		e := setup(t)
		dir = "/etc/netns/" + e.n.Name
		if _, err := os.Stat(dir + "/resolv.conf"); err != nil {
			t.Fatal(err)
		}
		e.want(t, 0, ahostsv4("web.test"), "getent", "ahostsv4", "web.test")
		e.dns.Stop(t)
	})
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s: still there after the test (%v)", dir, err)
	}
}
