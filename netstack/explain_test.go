package netstack

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExplain(t *testing.T) {
	p := mustParse(t, topoPolicy+`
  # (continues the network above)
`)
	p, err := p.WithFlags(flags(t, "deny", "tcp:db.internal:5432=EPERM", "allow", "unix:/run/*"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		dest string
		want []string
	}{
		{"tcp:10.1.2.3:5432", []string{
			"request:  connect tcp:10.1.2.3:5432 (inet stream socket)",
			"verdict:  deny (EPERM)",
			"by:       rule 1 of 3, --deny tcp:db.internal:5432=EPERM",
			"because:  10.1.2.3 is in 10.1.2.3/32 (db.internal at load), port 5432 is in 5432, and the socket is stream",
		}},
		{"unix:/run/x.sock", []string{
			"by:       rule 2 of 3, --allow unix:/run/*",
			"because:  path /run/x.sock matches the glob /run/*",
			"the 1 rule(s) before it did not match",
		}},
		{"tcp:10.50.0.20:22", []string{"by:       rule 3 of 3, p.yaml:4:5: allow: tcp:10.50.0.20:22"}},
		{"tcp:10.50.0.77:80", []string{
			"verdict:  unreachable (EHOSTUNREACH) after 3s",
			"by:       no rule matched (3 checked); the virtual network decides",
			"because:  10.50.0.77 is on the link of eth0 (10.50.0.0/24) but is no declared host: ARP fails after 3s",
		}},
		{"tcp:10.50.0.10:81", []string{"verdict:  refuse (ECONNREFUSED)", "host 10.50.0.10 (web, p.yaml:18:7) has no service on stream port 81"}},
		{"tcp:10.50.0.10:80", []string{"verdict:  redirect to 127.0.0.1:8080", "declares a service on port 80 at p.yaml:21:11"}},
		{"tcp:[2001:db8::1]:1", []string{"verdict:  unreachable (ENETUNREACH)", "no route of the virtual network covers 2001:db8::1"}},
		{"tcp:8.8.8.8:443", []string{
			"verdict:  deny (EACCES)",
			"the virtual network does not decide it; the default decides: deny EACCES",
			"the policy's default applies",
		}},
	}
	for _, tt := range tests {
		r, err := ParseRequest(tt.dest)
		if err != nil {
			t.Fatal(err)
		}
		got := p.Explain(r)
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("Explain(%s) lacks %q:\n%s", tt.dest, w, got)
			}
		}
	}
}

func TestExplainSelf(t *testing.T) {
	p := SelfPolicy()
	r, _ := ParseRequest("tcp:127.0.0.1:8080")
	if got := p.Explain(r); !strings.Contains(got, "own endpoints are not known here") || !strings.Contains(got, "to allow: --allow tcp:127.0.0.1:8080") {
		t.Errorf("no registry:\n%s", got)
	}
	e := NewEndpoints()
	p.UseEndpoints(e)
	if got := p.Explain(r); !strings.Contains(got, "tcp:127.0.0.1:8080 is not an endpoint the sandboxed processes listen on") {
		t.Errorf("not own:\n%s", got)
	}
	e.Add(inetEP(TypeStream, "127.0.0.1:8080"))
	if got := p.Explain(r); !strings.Contains(got, "verdict:  allow") || !strings.Contains(got, "is an endpoint the sandboxed processes listen on") || strings.Contains(got, "to allow") {
		t.Errorf("own:\n%s", got)
	}
	if got := p.Explain(Request{Family: FamilyUnspec}); !strings.Contains(got, "AF_UNSPEC") {
		t.Errorf("unspec:\n%s", got)
	}
	if got := p.Explain(Request{Family: FamilyUnix, Type: TypeDgram}); !strings.Contains(got, "unnamed Unix address") {
		t.Errorf("unnamed:\n%s", got)
	}
	if got := p.Explain(inet(TypeStream, "[::ffff:10.0.0.1]:80")); !strings.Contains(got, "inet6 stream socket") {
		t.Errorf("mapped:\n%s", got)
	}
}

func TestParseRequest(t *testing.T) {
	tests := []struct {
		in   string
		want Request
	}{
		{"tcp:10.0.0.1:80", Request{Family: FamilyInet, Type: TypeStream, Addr: netip.MustParseAddrPort("10.0.0.1:80")}},
		{"10.0.0.1:80", Request{Family: FamilyInet, Type: TypeStream, Addr: netip.MustParseAddrPort("10.0.0.1:80")}},
		{"udp:[::1]:53", Request{Family: FamilyInet6, Type: TypeDgram, Addr: netip.MustParseAddrPort("[::1]:53")}},
		{"[::ffff:10.0.0.1]:80", Request{Family: FamilyInet6, Type: TypeStream, Addr: netip.MustParseAddrPort("[::ffff:10.0.0.1]:80")}},
		{"unix:/run/a.sock", Request{Family: FamilyUnix, Type: TypeStream, Unix: UnixAddr{Path: "/run/a.sock"}}},
		{"unix:@abs", Request{Family: FamilyUnix, Type: TypeStream, Unix: UnixAddr{Abstract: true, Name: "abs"}}},
	}
	for _, tt := range tests {
		got, err := ParseRequest(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseRequest(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "10.0.0.1", "10.0.0.0/8:80", "unix:rel", "tcp:db.internal:80", "sctp:1.2.3.4:5"} {
		if _, err := ParseRequest(bad); err == nil {
			t.Errorf("ParseRequest(%q) accepted", bad)
		}
	}
}

// Every example policy parses, and its normalized form parses back to it.
func TestExamplePolicies(t *testing.T) {
	files, err := filepath.Glob("../examples/policies/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("found %d example policies, want at least 3", len(files))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p, err := ParsePolicy(filepath.Base(f), data, stubResolver)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		q, err := ParsePolicy("normalized", []byte(p.String()), nil)
		if err != nil || q.format(false) != p.format(false) {
			t.Errorf("%s: normalized form does not round-trip: %v\n%s", f, err, p)
		}
	}
}
