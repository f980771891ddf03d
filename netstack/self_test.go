package netstack

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
)

func inetEP(t SockType, s string) Endpoint {
	ap := netip.MustParseAddrPort(s)
	f := FamilyInet
	if ap.Addr().Is6() {
		f = FamilyInet6
	}
	return Endpoint{Family: f, Type: t, Addr: ap}
}

func TestEndpointsContains(t *testing.T) {
	e := NewEndpoints()
	e.Add(inetEP(TypeStream, "127.0.0.1:5432"))
	e.Add(inetEP(TypeStream, "0.0.0.0:8080"))
	e.Add(inetEP(TypeStream, "[::]:9090"))
	e.Add(inetEP(TypeDgram, "[::1]:53"))
	e.Add(inetEP(TypeStream, "[::ffff:127.0.0.5]:7000"))
	e.Add(inetEP(TypeStream, "192.0.2.10:4000"))
	e.Add(Endpoint{Family: FamilyUnix, Unix: UnixAddr{Path: "/tmp/app.sock"}})
	e.Add(Endpoint{Family: FamilyUnix, Unix: UnixAddr{Abstract: true, Name: "app"}})
	e.Add(Endpoint{Family: FamilyUnix}) // unnamed: ignored
	e.SetLocalAddrs([]netip.Addr{netip.MustParseAddr("192.0.2.10")})

	tests := []struct {
		req  Request
		want bool
	}{
		{inet(TypeStream, "127.0.0.1:5432"), true},
		{inet(TypeStream, "[::ffff:127.0.0.1]:5432"), true}, // v4-mapped from an inet6 socket
		{inet(TypeStream, "127.0.0.2:5432"), false},         // bound to .1 only
		{inet(TypeDgram, "127.0.0.1:5432"), false},          // TCP and UDP ports differ
		{inet(TypeStream, "127.0.0.1:8080"), true},          // wildcard, loopback
		{inet(TypeStream, "127.9.9.9:8080"), true},
		{inet(TypeStream, "0.0.0.0:8080"), true},               // connecting to 0.0.0.0 reaches loopback
		{inet(TypeStream, "192.0.2.10:8080"), true},            // wildcard, declared local address
		{inet(TypeStream, "192.0.2.11:8080"), false},           // wildcard, someone else's address
		{inet(TypeStream, "[::1]:8080"), false},                // 0.0.0.0 does not cover IPv6
		{inet(TypeStream, "[::1]:9090"), true},                 // :: covers IPv6 loopback
		{inet(TypeStream, "127.0.0.1:9090"), true},             // and IPv4, as a dual-stack socket
		{inet(TypeStream, "[::]:9090"), true},                  // :: reaches ::1
		{inet(TypeDgram, "[::1]:53"), true},                    //
		{inet(TypeDgram, "127.0.0.1:53"), false},               // [::1] is not 127.0.0.1
		{inet(TypeStream, "127.0.0.5:7000"), true},             // registered as v4-mapped
		{inet(TypeStream, "192.0.2.10:4000"), true},            // exact, non-loopback
		{unixPath("/tmp/app.sock"), true},                      //
		{unixPath("/tmp/app.sock2"), false},                    //
		{abstract("app"), true},                                //
		{abstract("/tmp/app.sock"), false},                     // abstract and path names are apart
		{Request{Family: FamilyUnix}, false},                   // unnamed
		{Request{Family: FamilyOther}, false},                  //
		{Request{Family: FamilyInet, Type: TypeStream}, false}, // no address
	}
	for _, tt := range tests {
		if got := e.Contains(tt.req); got != tt.want {
			t.Errorf("Contains(%s %s) = %v, want %v", tt.req.Family, tt.req.Dest(), got, tt.want)
		}
	}
	if n := len(e.List()); n != 8 {
		t.Errorf("List has %d endpoints, want 8: %v", n, e.List())
	}
}

func TestEndpointsCounted(t *testing.T) {
	e := NewEndpoints()
	ep := inetEP(TypeStream, "127.0.0.1:80")
	r := inet(TypeStream, "127.0.0.1:80")
	e.Add(ep)
	e.Add(ep) // SO_REUSEPORT: two sockets
	e.Remove(ep)
	if !e.Contains(r) {
		t.Fatal("one of two sockets closed, endpoint gone")
	}
	e.Remove(ep)
	e.Remove(ep) // one too many: harmless
	if e.Contains(r) {
		t.Fatal("both closed, endpoint still there")
	}
	u := Endpoint{Family: FamilyUnix, Unix: UnixAddr{Path: "/s"}}
	e.Add(u)
	e.Remove(u)
	if e.Contains(unixPath("/s")) || len(e.List()) != 0 {
		t.Fatalf("left over: %v", e.List())
	}
}

// The sentry adds and removes while connects are decided: run with -race.
func TestEndpointsConcurrent(t *testing.T) {
	p := SelfPolicy()
	e := NewEndpoints()
	p.UseEndpoints(e)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				ep := inetEP(TypeStream, fmt.Sprintf("127.0.0.1:%d", 1000+g*1000+i))
				e.Add(ep)
				e.Remove(ep)
			}
		}()
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				p.Decide(inet(TypeStream, fmt.Sprintf("127.0.0.1:%d", 1000+i)))
			}
		}()
	}
	wg.Wait()
}

func TestSuggest(t *testing.T) {
	tests := []struct {
		req  Request
		want string
	}{
		{inet(TypeStream, "127.0.0.1:8080"), "--allow tcp:127.0.0.1:8080"},
		{inet(TypeDgram, "[::1]:53"), "--allow 'udp:[::1]:53'"},
		{inet(TypeStream, "[::ffff:10.0.0.1]:80"), "--allow tcp:10.0.0.1:80"},
		{inet(TypeSeqpacket, "10.0.0.1:80"), "--allow 10.0.0.1:80"},
		{unixPath("/run/app.sock"), "--allow unix:/run/app.sock"},
		{unixPath("/tmp/my sock[1]"), `--allow 'unix:/tmp/my sock\[1]'`},
		{unixPath("/tmp/it's"), `--allow 'unix:/tmp/it'\''s'`},
		{abstract("/tmp/.X11-unix/X0"), "--allow unix:@/tmp/.X11-unix/X0"},
		{abstract("a\x00b*"), `--allow 'unix:@a?b\*'`},
		{Request{Family: FamilyUnix}, ""},
		{Request{Family: FamilyOther}, "--allow-all"},
	}
	for _, tt := range tests {
		got := Suggest(tt.req)
		if got != tt.want {
			t.Errorf("Suggest(%s) = %s, want %s", tt.req.Dest(), got, tt.want)
		}
		if got == "" || got == "--allow-all" {
			continue
		}
		// The suggestion must allow the request it was made for.
		arg := unquoteShell(got[len("--allow "):])
		rl, err := ParseFlag("allow", arg, nil)
		if err != nil {
			t.Errorf("suggestion %s does not parse: %v", got, err)
			continue
		}
		if !rl.Matches(tt.req) {
			t.Errorf("suggestion %s does not match %s", got, tt.req.Dest())
		}
	}
}

// unquoteShell undoes shellQuote, for the test.
func unquoteShell(s string) string {
	if len(s) < 2 || s[0] != '\'' {
		return s
	}
	var out []byte
	in := false
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\'':
			in = !in
		case s[i] == '\\' && !in:
			i++
			out = append(out, s[i])
		default:
			out = append(out, s[i])
		}
	}
	return string(out)
}

func TestEndpointsZeroValue(t *testing.T) {
	var e Endpoints
	r := inet(TypeStream, "127.0.0.1:1")
	if e.Contains(r) || len(e.List()) != 0 {
		t.Fatal("zero value not empty")
	}
	e.Remove(inetEP(TypeStream, "127.0.0.1:1"))
	e.Add(inetEP(TypeStream, "127.0.0.1:1"))
	if !e.Contains(r) {
		t.Fatal("zero value unusable")
	}
}

// A Unix path whose socket was bound under another name (bind mount, hard
// link) is allowed only when both names are.
func TestUnixBoundNameMustBeAllowedToo(t *testing.T) {
	var flags []Rule
	for _, f := range [][2]string{{"allow", "unix:/allowed/*"}, {"deny", "unix:/denied/*"}, {"allow", "unix:/other/*"}} {
		rl, err := ParseFlag(f[0], f[1], stubResolver)
		if err != nil {
			t.Fatal(err)
		}
		flags = append(flags, rl)
	}
	p, err := SelfPolicy().WithFlags(flags)
	if err != nil {
		t.Fatal(err)
	}
	req := func(path, bound string) Request {
		return Request{Family: FamilyUnix, Type: TypeStream, Unix: UnixAddr{Path: path, Bound: bound}}
	}
	tests := []struct {
		r       Request
		want    Action
		suggest bool // the self default decided (the sentry may still find it the tree's own)
	}{
		{req("/allowed/s", ""), Allow, false},
		{req("/allowed/s", "/allowed/s"), Allow, false},
		{req("/allowed/s", "/other/s"), Allow, false},
		{req("/allowed/s", "/denied/s"), Deny, false},
		{req("/denied/s", "/allowed/s"), Deny, false},
		{req("/allowed/s", "/elsewhere/s"), Deny, true},
		{req("/elsewhere/s", "/allowed/s"), Deny, true},
		{Request{Family: FamilyUnix, Type: TypeStream, Unix: UnixAddr{Abstract: true, Name: "x", Bound: "/denied/s"}}, Deny, true},
	}
	for _, tt := range tests {
		d := p.Decide(tt.r)
		if d.Action != tt.want || (d.Suggest != "") != tt.suggest {
			t.Errorf("Decide(%+v) = %+v, want %v (suggestion: %v)", tt.r.Unix, d, tt.want, tt.suggest)
		}
	}
	if d := p.Decide(req("/allowed/s", "/elsewhere/s")); d.Suggest != "--allow unix:/elsewhere/s" {
		t.Errorf("suggestion for the bound name: %q", d.Suggest)
	}
}

func TestJudgesUnixNames(t *testing.T) {
	if SelfPolicy().JudgesUnixNames() {
		t.Error("the self policy has no Unix rules")
	}
	rl, err := ParseFlag("allow", "unix:/run/*", stubResolver)
	if err != nil {
		t.Fatal(err)
	}
	p, err := SelfPolicy().WithFlags([]Rule{rl})
	if err != nil || !p.JudgesUnixNames() {
		t.Errorf("a unix: rule: JudgesUnixNames false (%v)", err)
	}
	rl, _ = ParseFlag("allow", "tcp:127.0.0.1:80", stubResolver)
	if p, _ := SelfPolicy().WithFlags([]Rule{rl}); p.JudgesUnixNames() {
		t.Error("a tcp rule judges no Unix name")
	}
}
