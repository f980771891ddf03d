// Package dnstest runs name resolution for tests inside a [nettest.Netns]:
// a DNS server (cmd/dnsd) and web servers (cmd/webd) in the peer namespace,
// a resolv.conf that points the test namespace at them, and a git daemon.
// Nothing here forwards anything upstream or reaches past the namespaces.
//
//	n := nettest.NewNetns(t)
//	dns := dnstest.Start(t, n, "web.test 60 A 10.231.0.2\n")
//	dnstest.UseResolver(t, n, "", "")
//	n.MustRun(t, "getent", "ahostsv4", "web.test")
//	dns.Queries() // ["query udp A web.test. 10.231.0.1:41234", ...]
//
// The programs it builds are cached per test binary: use [nettest.Main]
// from TestMain.
package dnstest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"sandbox/tests/internal/nettest"
)

// Where the servers listen, in the peer namespace.
const (
	DNSAddr    = nettest.PeerIP + ":53"
	DNSAddr6   = "[" + nettest.PeerIP6 + "]:53"
	HTTPAddr   = nettest.PeerIP + ":8080"
	HTTPAddr6  = "[" + nettest.PeerIP6 + "]:8080"
	HTTPSAddr  = nettest.PeerIP + ":8443"
	HTTPSAddr6 = "[" + nettest.PeerIP6 + "]:8443"
	GitPort    = "9418"
)

// DefaultResolvConf points at the server of [Start] with short timeouts:
// a query that gets no answer fails after about 2 s.
const DefaultResolvConf = "nameserver " + nettest.PeerIP + "\noptions timeout:1 attempts:2\n"

// Server is a running dnsd.
type Server struct {
	p *proc
}

// Start starts dnsd in n's peer namespace, serving zone (lines of NAME TTL
// TYPE VALUE, see cmd/dnsd) over UDP and TCP on [DNSAddr] and [DNSAddr6],
// with the extra dnsd flags args (such as "-truncate", "big.test" or
// "-silent"). It is stopped when the test ends.
func Start(t testing.TB, n *nettest.Netns, zone string, args ...string) *Server {
	t.Helper()
	WaitIPv6(t, n)
	bin := nettest.GoBuild(t, "./tests/internal/dnstest/cmd/dnsd")
	zoneFile := filepath.Join(t.TempDir(), "zone")
	if err := os.WriteFile(zoneFile, []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	argv := append([]string{bin, "-listen", DNSAddr + "," + DNSAddr6, "-zone", zoneFile}, args...)
	return &Server{p: startProc(t, n.Peer, isLine("ready"), argv...)}
}

// Queries returns the query lines dnsd printed so far, such as
// "query udp A web.test. 10.231.0.1:41234" (query PROTO QTYPE NAME FROM).
// dnsd prints a line before it answers, but the test reads it
// asynchronously: use [Server.WaitQueries] to wait for lines that may not
// have arrived yet.
func (s *Server) Queries() []string { return s.p.stdoutLines("query ") }

// WaitQueries waits up to 2 s until at least n query lines contain substr
// (every line if substr is ""), and returns the matching lines. It fails
// the test if they do not come.
func (s *Server) WaitQueries(t testing.TB, substr string, n int) []string {
	t.Helper()
	var got []string
	for deadline := time.Now().Add(2 * time.Second); ; {
		got = got[:0]
		for _, q := range s.Queries() {
			if strings.Contains(q, substr) {
				got = append(got, q)
			}
		}
		if len(got) >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(got) < n {
		t.Fatalf("dnsd: want %d queries matching %q, got %d; all queries:\n%s",
			n, substr, len(got), strings.Join(s.Queries(), "\n"))
	}
	return got
}

// Reset forgets the query lines seen so far.
func (s *Server) Reset() { s.p.reset() }

// Stop sends dnsd SIGTERM and fails the test unless it exits 0 within 5 s.
func (s *Server) Stop(t testing.TB) { t.Helper(); s.p.stop(t) }

// WaitIPv6 waits up to 5 s until IPv6 works both ways on n's veth pair.
// [nettest.NewNetns] returns once the routes to the peer exist, but the
// peer's end may not have its multicast route (ff00::/8) yet for a few
// hundred milliseconds: until then it drops the neighbour solicitations
// sent to it, and the first IPv6 packets each way wait a second for the
// neighbour discovery to be retried. Start and StartHTTP call it.
func WaitIPv6(t testing.TB, n *nettest.Netns) {
	t.Helper()
	start := time.Now()
	for {
		r := nettest.Run(5*time.Second, "ip", "-n", n.Peer, "-6", "route", "show", "table", "local", "type", "multicast", "dev", "veth1")
		r0 := nettest.Run(5*time.Second, "ip", "-n", n.Name, "-6", "route", "show", "table", "local", "type", "multicast", "dev", "veth0")
		if r.Err == nil && strings.Contains(r.Stdout, "ff00::/8") && r0.Err == nil && strings.Contains(r0.Stdout, "ff00::/8") {
			return
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("netns %s: IPv6 multicast routes missing after 5 s: %v %v", n.Name, r, r0)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// UseResolver makes the programs run in n.Name with `ip netns exec` (so
// n.Run and n.MustRun) see resolvConf as /etc/resolv.conf
// ([DefaultResolvConf] if ""), hosts as /etc/hosts unless hosts is "", and
// an /etc/nsswitch.conf whose hosts line is "files dns". ip netns exec
// bind-mounts the files of /etc/netns/NAME/ over those of /etc/ in the
// command's own mount namespace; the directory is removed when the test
// ends.
func UseResolver(t testing.TB, n *nettest.Netns, resolvConf, hosts string) {
	t.Helper()
	if resolvConf == "" {
		resolvConf = DefaultResolvConf
	}
	dir := filepath.Join("/etc/netns", n.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// /etc/netns itself is left: other tests may be using it.
	t.Cleanup(func() { os.RemoveAll(dir) })
	files := map[string]string{"resolv.conf": resolvConf, "nsswitch.conf": nsswitch(t)}
	if hosts != "" {
		files["hosts"] = hosts
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := n.MustRun(t, "cat", "/etc/resolv.conf").Stdout; got != resolvConf {
		t.Fatalf("ip netns exec %s does not see %s/resolv.conf as /etc/resolv.conf: it has\n%s", n.Name, dir, got)
	}
}

// nsswitch returns the machine's nsswitch.conf with its hosts line
// replaced by "hosts: files dns" (so that no mdns, myhostname or resolve
// module answers instead of the test's server).
func nsswitch(t testing.TB) string {
	b, err := os.ReadFile("/etc/nsswitch.conf")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "hosts:" {
			continue
		}
		if line != "" {
			out = append(out, line)
		}
	}
	return strings.Join(append(out, "hosts: files dns"), "\n") + "\n"
}

// Web is a running webd: HTTP on [HTTPAddr] and [HTTPAddr6], HTTPS on
// [HTTPSAddr] and [HTTPSAddr6]. Every request gets "ok\n".
type Web struct {
	CAFile string // the PEM certificate of the CA that signed the HTTPS certificate
	p      *proc
}

// StartHTTP starts webd in n's peer namespace. Its HTTPS certificate is
// made now, valid for tlsNames (DNS names or IP addresses), and signed by a
// CA made now too, whose certificate is in the returned Web's CAFile. It is
// stopped when the test ends.
func StartHTTP(t testing.TB, n *nettest.Netns, tlsNames ...string) *Web {
	t.Helper()
	WaitIPv6(t, n)
	bin := nettest.GoBuild(t, "./tests/internal/dnstest/cmd/webd")
	caFile, certFile, keyFile := MakeCert(t, tlsNames...)
	p := startProc(t, n.Peer, isLine("ready"), bin,
		"-http", HTTPAddr+","+HTTPAddr6, "-https", HTTPSAddr+","+HTTPSAddr6,
		"-cert", certFile, "-key", keyFile)
	return &Web{CAFile: caFile, p: p}
}

// Requests returns the request lines webd printed so far, such as
// "request https GET web.test:8443 / 10.231.0.1:40312" (request SCHEME
// METHOD HOST PATH FROM).
func (w *Web) Requests() []string { return w.p.stdoutLines("request ") }

// MakeCert makes, in a temporary directory, a CA and a certificate for
// names (DNS names or IP addresses) signed by it, both ECDSA P-256, valid
// from an hour ago for a day. It returns the PEM files of the CA's
// certificate, the certificate and its key.
func MakeCert(t testing.TB, names ...string) (caFile, certFile, keyFile string) {
	t.Helper()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "dnstest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err = x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, name := range names {
		if ip := net.ParseIP(name); ip != nil {
			leaf.IPAddresses = append(leaf.IPAddresses, ip)
		} else {
			leaf.DNSNames = append(leaf.DNSNames, name)
		}
	}
	if len(names) > 0 {
		leaf.Subject.CommonName = names[0]
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for _, f := range []struct {
		path, typ string
		der       []byte
		mode      os.FileMode
	}{
		{caFile, "CERTIFICATE", caDER, 0o644},
		{certFile, "CERTIFICATE", leafDER, 0o644},
		{keyFile, "PRIVATE KEY", keyDER, 0o600},
	} {
		data := pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der})
		if err := os.WriteFile(f.path, data, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	return caFile, certFile, keyFile
}

// StartGitDaemon makes a bare repository with one commit on main and
// serves it with `git daemon` in n's peer namespace on port [GitPort] of
// [nettest.PeerIP]. It returns its URL, git://10.231.0.2:9418/repo.git (put
// a name that resolves to the peer in place of the address to test name
// resolution). It skips the test if git or git daemon is missing.
func StartGitDaemon(t testing.TB, n *nettest.Netns) (url string) {
	t.Helper()
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Skip("skipping: git is not installed (Debian package git)")
	}
	execPath, err := exec.Command(gitBin, "--exec-path").Output()
	if err != nil {
		t.Fatalf("git --exec-path: %v", err)
	}
	if _, err := os.Stat(filepath.Join(strings.TrimSpace(string(execPath)), "git-daemon")); err != nil {
		t.Skip("skipping: git daemon is not installed (on Debian it is in the git package)")
	}
	base := t.TempDir()
	repo := filepath.Join(base, "repo.git")
	git := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(gitBin, args...)
		cmd.Env = append(os.Environ(),
			"HOME="+base, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_DIR="+repo,
			"GIT_AUTHOR_NAME=dnstest", "GIT_AUTHOR_EMAIL=dnstest@web.test", "GIT_AUTHOR_DATE=1700000000 +0000",
			"GIT_COMMITTER_NAME=dnstest", "GIT_COMMITTER_EMAIL=dnstest@web.test", "GIT_COMMITTER_DATE=1700000000 +0000")
		cmd.Stdin = strings.NewReader(stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("git %q: %v\n%s", args, err, stderr.String())
		}
		return strings.TrimSpace(string(out))
	}
	git("", "init", "-q", "--bare", "--initial-branch=main", repo)
	blob := git("hello from dnstest\n", "hash-object", "-w", "--stdin")
	tree := git("100644 blob "+blob+"\tREADME\n", "mktree")
	commit := git("", "commit-tree", tree, "-m", "initial commit")
	git("", "update-ref", "refs/heads/main", commit)

	startProc(t, n.Peer, func(line string) bool { return strings.HasSuffix(line, "Ready to rumble") },
		gitBin, "daemon", "--verbose", "--reuseaddr", "--export-all", "--base-path="+base,
		"--listen="+nettest.PeerIP, "--port="+GitPort)
	return "git://" + nettest.PeerIP + ":" + GitPort + "/repo.git"
}

// proc is a program running in a namespace whose stdout and stderr lines
// are kept.
type proc struct {
	argv   []string
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // once exited is closed

	mu      sync.Mutex
	stdout  []string
	stderr  []string
	ready   func(string) bool
	readyCh chan struct{}
}

func isLine(s string) func(string) bool { return func(l string) bool { return l == s } }

// startProc starts argv in the namespace ns and waits up to 10 s for a line
// on stdout or stderr for which ready is true. The process group is
// stopped when the test ends: SIGTERM, and SIGKILL a second later.
func startProc(t testing.TB, ns string, ready func(string) bool, argv ...string) *proc {
	t.Helper()
	p := &proc{argv: argv, exited: make(chan struct{}), ready: ready, readyCh: make(chan struct{})}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.WaitDelay = 2 * time.Second // children that keep the pipes open
	p.cmd.Stdout = &lineWriter{line: func(l string) { p.add(&p.stdout, l) }}
	p.cmd.Stderr = &lineWriter{line: func(l string) { p.add(&p.stderr, l) }}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %q in %s: %v", argv, ns, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		pg := -p.cmd.Process.Pid
		_ = syscall.Kill(pg, syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(time.Second):
		}
		_ = syscall.Kill(pg, syscall.SIGKILL)
		<-p.exited
	})
	select {
	case <-p.readyCh:
	case <-p.exited:
		t.Fatalf("%q in %s exited before it was ready: %v\n%s", argv, ns, p.err, p.stderrText())
	case <-time.After(10 * time.Second):
		t.Fatalf("%q in %s: not ready after 10s\n%s", argv, ns, p.stderrText())
	}
	return p
}

func (p *proc) add(to *[]string, line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	*to = append(*to, line)
	if p.ready != nil && p.ready(line) {
		p.ready = nil
		close(p.readyCh)
	}
}

func (p *proc) stdoutLines(prefix string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, l := range p.stdout {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

func (p *proc) stderrText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.stderr, "\n")
}

func (p *proc) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stdout = nil
}

func (p *proc) stop(t testing.TB) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		t.Fatalf("%q: still running 5 s after SIGTERM", p.argv)
	}
	if p.err != nil {
		t.Fatalf("%q: after SIGTERM: %v\n%s", p.argv, p.err, p.stderrText())
	}
}

// lineWriter calls line for each complete line written to it. Only
// os/exec's copying goroutine writes to it.
type lineWriter struct {
	line func(string)
	buf  []byte
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.line(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	return len(b), nil
}

// String describes the server for failure messages.
func (s *Server) String() string { return fmt.Sprintf("dnsd %q", s.p.argv) }
