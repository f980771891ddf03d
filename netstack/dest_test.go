package netstack

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// stubResolver resolves a fixed set of names, as a test /etc/hosts.
func stubResolver(host string) ([]netip.Addr, error) {
	switch host {
	case "db.internal":
		return []netip.Addr{netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("fd00::3")}, nil
	case "localhost":
		return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1"), netip.MustParseAddr("127.0.0.1")}, nil
	case "mapped.example":
		return []netip.Addr{netip.MustParseAddr("::ffff:192.0.2.1")}, nil
	case "empty.example":
		return nil, nil
	}
	return nil, errors.New("no such host")
}

func pfx(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

var (
	tcpOnly = TypeSetOf(TypeStream)
	udpOnly = TypeSetOf(TypeDgram)
)

func TestParseDest(t *testing.T) {
	tests := []struct {
		in   string
		want Dest
		str  string // canonical form; "" means same as in
	}{
		{"*", Dest{Kind: DestAny}, ""},
		{"any", Dest{Kind: DestAny}, "*"},
		{" * ", Dest{Kind: DestAny}, "*"},
		{"10.0.0.0/8", Dest{Kind: DestInet, Prefixes: pfx("10.0.0.0/8"), Ports: AllPorts}, ""},
		{"tcp:127.0.0.1:5432", Dest{Kind: DestInet, Types: tcpOnly, Prefixes: pfx("127.0.0.1/32"), Ports: PortRange{5432, 5432}}, ""},
		{"udp:10.0.0.0/8:53", Dest{Kind: DestInet, Types: udpOnly, Prefixes: pfx("10.0.0.0/8"), Ports: PortRange{53, 53}}, ""},
		{"1.2.3.4:1000-2000", Dest{Kind: DestInet, Prefixes: pfx("1.2.3.4/32"), Ports: PortRange{1000, 2000}}, ""},
		{"1.2.3.4:0", Dest{Kind: DestInet, Prefixes: pfx("1.2.3.4/32"), Ports: PortRange{0, 0}}, ""},
		{"1.2.3.4:0-65535", Dest{Kind: DestInet, Prefixes: pfx("1.2.3.4/32"), Ports: AllPorts}, "1.2.3.4"},
		{"[::1]:8080-8090", Dest{Kind: DestInet, Prefixes: pfx("::1/128"), Ports: PortRange{8080, 8090}}, ""},
		{"[fd00::/8]:53", Dest{Kind: DestInet, Prefixes: pfx("fd00::/8"), Ports: PortRange{53, 53}}, ""},
		{"[fd00::]/8:53", Dest{Kind: DestInet, Prefixes: pfx("fd00::/8"), Ports: PortRange{53, 53}}, "[fd00::/8]:53"},
		{"[fd00::]/8", Dest{Kind: DestInet, Prefixes: pfx("fd00::/8"), Ports: AllPorts}, "[fd00::/8]"},
		{"[::1]", Dest{Kind: DestInet, Prefixes: pfx("::1/128"), Ports: AllPorts}, ""},
		{"fd00::/8", Dest{Kind: DestInet, Prefixes: pfx("fd00::/8"), Ports: AllPorts}, "[fd00::/8]"},
		{"::1", Dest{Kind: DestInet, Prefixes: pfx("::1/128"), Ports: AllPorts}, "[::1]"},
		{"dead::beef", Dest{Kind: DestInet, Prefixes: pfx("dead::beef/128"), Ports: AllPorts}, "[dead::beef]"},
		{"tcp:::1", Dest{Kind: DestInet, Types: tcpOnly, Prefixes: pfx("::1/128"), Ports: AllPorts}, "tcp:[::1]"},
		{"[::]/0", Dest{Kind: DestInet, Prefixes: pfx("::/0"), Ports: AllPorts}, "[::/0]"},
		// v4-mapped addresses and prefixes count as IPv4.
		{"[::ffff:10.0.0.1]:80", Dest{Kind: DestInet, Prefixes: pfx("10.0.0.1/32"), Ports: PortRange{80, 80}}, "10.0.0.1:80"},
		{"[::ffff:10.0.0.0/104]", Dest{Kind: DestInet, Prefixes: pfx("10.0.0.0/8"), Ports: AllPorts}, "10.0.0.0/8"},
		{"tcp:*:443", Dest{Kind: DestInet, Types: tcpOnly, Ports: PortRange{443, 443}}, ""},
		{"tcp:*", Dest{Kind: DestInet, Types: tcpOnly, Ports: AllPorts}, ""},
		{"udp:any", Dest{Kind: DestInet, Types: udpOnly, Ports: AllPorts}, "udp:*"},
		{"*:53", Dest{Kind: DestInet, Ports: PortRange{53, 53}}, ""},
		{"*:0-65535", Dest{Kind: DestInet, Ports: AllPorts}, ""},
		{"tcp:db.internal:5432", Dest{Kind: DestInet, Types: tcpOnly, Host: "db.internal", Prefixes: pfx("10.1.2.3/32", "fd00::3/128"), Ports: PortRange{5432, 5432}}, ""},
		{"localhost", Dest{Kind: DestInet, Host: "localhost", Prefixes: pfx("127.0.0.1/32", "::1/128"), Ports: AllPorts}, ""},
		{"localhost:80", Dest{Kind: DestInet, Host: "localhost", Prefixes: pfx("127.0.0.1/32", "::1/128"), Ports: PortRange{80, 80}}, ""},
		{"mapped.example", Dest{Kind: DestInet, Host: "mapped.example", Prefixes: pfx("192.0.2.1/32"), Ports: AllPorts}, ""},
		{"unix:/run/postgresql/*", Dest{Kind: DestUnix, Glob: "/run/postgresql/*"}, ""},
		{"unix:/run/[ab]?.sock", Dest{Kind: DestUnix, Glob: "/run/[ab]?.sock"}, ""},
		{"unix:@/tmp/.X11-unix/X*", Dest{Kind: DestAbstract, Glob: "/tmp/.X11-unix/X*"}, ""},
		{"unix:@", Dest{Kind: DestAbstract, Glob: ""}, ""},
		{"unix:@*", Dest{Kind: DestAbstract, Glob: "*"}, ""},
		{"unix:*", Dest{Kind: DestUnixAny}, ""},
	}
	for _, tt := range tests {
		got, err := ParseDest(tt.in, stubResolver)
		if err != nil {
			t.Errorf("ParseDest(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseDest(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		str := tt.str
		if str == "" {
			str = strings.TrimSpace(tt.in)
		}
		if got.String() != str {
			t.Errorf("ParseDest(%q).String() = %q, want %q", tt.in, got.String(), str)
		}
		back, err := ParseDest(got.String(), stubResolver)
		if err != nil || !reflect.DeepEqual(back, got) {
			t.Errorf("round trip of %q via %q: %+v, %v", tt.in, got.String(), back, err)
		}
	}
}

func TestParseDestErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "empty; expected"},
		{"tcp:", "expected an address"},
		{"TCP:1.2.3.4", `unknown scheme "TCP:"`},
		{"sctp:1.2.3.4:80", `unknown scheme "sctp:"`},
		{"1.2.3.4:", "expected PORT or PORT-PORT"},
		{"1.2.3.4:70000", "expected PORT or PORT-PORT (0-65535)"},
		{"1.2.3.4:http", "expected PORT or PORT-PORT"},
		{"1.2.3.4:+80", "expected PORT or PORT-PORT"},
		{"1.2.3.4:90-80", "first port not above the second"},
		{"1.2.3.4:80-", "expected PORT or PORT-PORT"},
		{"10.0.0.1/8", "host bits set: expected 10.0.0.0/8"},
		{"10.0.0.0/33", "expected ADDR/BITS"},
		{"10.0.0", "expected an IP address"},
		{"300.1.1.1", "expected an IP address"},
		{"[::1", "expected ] after the IPv6 address"},
		{"[::1]80", "expected :PORT after ]"},
		{"[10.0.0.1]:80", "expected an IPv6 address inside [ ]"},
		{"[fe80::1%eth0]:80", "zones (%IFACE) are not supported"},
		{"*.db.internal/24", "takes no /BITS"},
		{"*.", "expected an IP address"},
		{"a.*.example", "expected an IP address"},
		{"db.internal/24", "takes no /BITS"},
		{"unix:", "expected an absolute path, @NAME or *"},
		{"unix:run/x.sock", "expected an absolute path"},
		{"unix:/run/[x", "bad glob"},
		{"unix:@[x", "bad glob"},
		{"1.2.3.4 :80", "white space"},
	}
	for _, tt := range tests {
		_, err := ParseDest(tt.in, stubResolver)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseDest(%q) error = %v, want it to contain %q", tt.in, err, tt.want)
		}
	}
	// A name that does not resolve at load is no error: it matches what
	// the program's own lookups return.
	for in, why := range map[string]string{"nosuch.example": "no such host", "empty.example": "no address"} {
		d, err := ParseDest(in, stubResolver)
		if err != nil || d.Host != in || len(d.Prefixes) != 0 || !strings.Contains(d.Unresolved, why) {
			t.Errorf("ParseDest(%q) = %+v, %v; want the name kept, no prefixes, Unresolved %q", in, d, err, why)
		}
	}
	if d, err := ParseDest("tcp:DB.Internal.:5432", nil); err != nil || d.Host != "db.internal" || len(d.Prefixes) != 0 || d.Unresolved != "" {
		t.Errorf("hostname without resolver: %+v, %v", d, err)
	}
	if d, err := ParseDest("*.Example.COM:443", stubResolver); err != nil || d.Host != "*.example.com" || len(d.Prefixes) != 0 {
		t.Errorf("glob: %+v, %v (a glob is never resolved at load)", d, err)
	}
}

func inet(typ SockType, s string) Request {
	ap := netip.MustParseAddrPort(s)
	f := FamilyInet
	if ap.Addr().Is6() {
		f = FamilyInet6
	}
	return Request{Family: f, Type: typ, Addr: ap}
}

func unixPath(p string) Request {
	return Request{Family: FamilyUnix, Type: TypeStream, Unix: UnixAddr{Path: p}}
}

func abstract(n string) Request {
	return Request{Family: FamilyUnix, Type: TypeStream, Unix: UnixAddr{Abstract: true, Name: n}}
}

func TestDestMatches(t *testing.T) {
	tests := []struct {
		dest string
		req  Request
		want bool
	}{
		{"*", inet(TypeStream, "1.2.3.4:80"), true},
		{"*", unixPath("/x"), true},
		{"*", Request{Family: FamilyOther}, true},
		{"10.0.0.0/8", inet(TypeStream, "10.9.9.9:1"), true},
		{"10.0.0.0/8", inet(TypeDgram, "10.9.9.9:1"), true},
		{"10.0.0.0/8", inet(TypeStream, "11.0.0.1:1"), false},
		{"10.0.0.0/8", inet(TypeStream, "[::ffff:10.1.1.1]:1"), true}, // v4-mapped counts as IPv4
		{"[::ffff:0:0/96]", inet(TypeStream, "[::ffff:10.1.1.1]:1"), true},
		{"[::/0]", inet(TypeStream, "[::ffff:10.1.1.1]:1"), false}, // IPv6 prefixes never match IPv4
		{"[::/0]", inet(TypeStream, "[2001:db8::1]:1"), true},
		{"[fe80::/10]", inet(TypeStream, "[fe80::1%eth0]:1"), true},
		{"tcp:127.0.0.1:5432", inet(TypeStream, "127.0.0.1:5432"), true},
		{"tcp:127.0.0.1:5432", inet(TypeDgram, "127.0.0.1:5432"), false},
		{"tcp:127.0.0.1:5432", inet(TypeStream, "127.0.0.1:5433"), false},
		{"udp:*:53", inet(TypeDgram, "[2001:db8::1]:53"), true},
		{"udp:*:53", inet(TypeDgram, "8.8.8.8:53"), true},
		{"[::1]:8080-8090", inet(TypeStream, "[::1]:8085"), true},
		{"[::1]:8080-8090", inet(TypeStream, "[::1]:8091"), false},
		{"tcp:db.internal:5432", inet(TypeStream, "[fd00::3]:5432"), true},
		{"10.0.0.0/8", unixPath("/10.0.0.1"), false},
		{"unix:/run/postgresql/*", unixPath("/run/postgresql/.s.PGSQL.5432"), true},
		{"unix:/run/postgresql/*", unixPath("/run/postgresql/sub/x"), false}, // * does not cross /
		{"unix:/run/postgresql/*", abstract("/run/postgresql/x"), false},
		{"unix:@/tmp/.X11-unix/X*", abstract("/tmp/.X11-unix/X0"), true},
		{"unix:@/tmp/.X11-unix/X*", unixPath("/tmp/.X11-unix/X0"), false},
		{"unix:@*", abstract("/any/thing"), true},
		{"unix:@", abstract(""), true},
		{"unix:*", abstract("x"), true},
		{"unix:*", unixPath("/a/b/c"), true},
		{"unix:*", Request{Family: FamilyUnix}, true},
		{"unix:*", inet(TypeStream, "1.2.3.4:5"), false},
		{"tcp:*", Request{Family: FamilyInet, Type: TypeStream}, false}, // no address
	}
	for _, tt := range tests {
		d, err := ParseDest(tt.dest, stubResolver)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.Matches(tt.req); got != tt.want {
			t.Errorf("%s matches %s = %v, want %v", tt.dest, tt.req.Dest(), got, tt.want)
		}
	}
}
