package netstack

import (
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// DESTs that parse but could match nothing the kernel would connect to are
// errors that name the fix.
func TestDestThatCannotMatch(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	os.Mkdir(real, 0o755)
	os.Symlink(real, filepath.Join(dir, "link"))
	os.WriteFile(filepath.Join(real, "sock"), nil, 0o644)
	tests := []struct{ dest, want string }{
		{"::1:8080", "write [::1]:8080"},
		{"tcp:::1:8080", "write [::1]:8080"},
		{"fe80::1:443", "for the address fe80::1:443 on every port write [fe80::1:443]"},
		{"::1:80-90", "write [::1]:80-90"},
		{"unix:" + real, "is a directory, and a connect never names a directory: for the sockets in it write unix:" + real + "/*"},
		{"unix:" + real + "/", "ends in /: a socket is a file, never a directory; for the sockets in it write unix:" + real + "/*"},
		{"unix:/run//x", "write unix:/run/x"},
		{"unix:/run/./x", "write unix:/run/x"},
		{"unix:/run/a/../x", "write unix:/run/x"},
		{"unix:/", "write unix:/* for the sockets in /"},
		{"unix:/a\x00b", "NUL"},
		{"unix:" + dir + "/link/sock", "write unix:" + real + "/sock"},
		{"unix:" + dir + "/link/*.sock", "write unix:" + real + "/*.sock"},
		{"unix:" + dir + "/link/not-yet", "write unix:" + real + "/not-yet"},
		{"unix:@" + strings.Repeat("a", 108), "at most 107"},
	}
	for _, tt := range tests {
		_, err := ParseDest(tt.dest, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseDest(%q) = %v, want an error containing %q", tt.dest, err, tt.want)
		}
	}
	for _, ok := range []string{"::1", "[::1]:8080", "[::1:8080]", "2001:db8::/32", "fe80::", "::ffff:1.2.3.4",
		"unix:" + real + "/sock", "unix:" + real + "/*", "unix:/nonexistent/dir/sock", "unix:@" + strings.Repeat("a", 107), "unix:@x/"} {
		if _, err := ParseDest(ok, nil); err != nil {
			t.Errorf("ParseDest(%q): %v", ok, err)
		}
	}
}

// FuzzParseDestMatchable: whatever ParseDest accepts matches at least one
// destination a connect can name: a valid address and port, a clean
// absolute path, an abstract name that fits sockaddr_un.
func FuzzParseDestMatchable(f *testing.F) {
	for _, s := range []string{"*", "::1:8080", "unix:/run/postgresql", "unix:/run/*/x", "unix:/a/[b-c]?", "unix:@n*", "10.0.0.0/8:1-2", "udp:[::1]:53"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDest(s, nil)
		if err != nil {
			return
		}
		switch d.Kind {
		case DestAny, DestUnixAny:
			return
		case DestInet:
			addr := netip.IPv6Loopback()
			if len(d.Prefixes) > 0 {
				addr = d.Prefixes[0].Addr()
			}
			fam, typ := FamilyInet, TypeStream
			if addr.Is6() {
				fam = FamilyInet6
			}
			if d.Types != 0 && !d.Types.Has(TypeStream) {
				typ = TypeDgram
			}
			r := Request{Family: fam, Type: typ, Addr: netip.AddrPortFrom(addr, d.Ports.Lo)}
			if d.Host != "" { // a name matches what the program's lookups named so
				r.Names, r.Looked = "x."+strings.TrimPrefix(d.Host, "*."), true
				if !strings.HasPrefix(d.Host, "*.") {
					r.Names = d.Host
				}
			}
			if !d.Matches(r) {
				t.Fatalf("%q matches not even %s", s, r.Dest())
			}
		case DestUnix, DestAbstract:
			w, ok := globWitness(d.Glob)
			if !ok {
				if !strings.Contains(d.Glob, "[") { // classes are too subtle for globWitness
					t.Fatalf("%q: found no name it matches", s)
				}
				return
			}
			if d.Kind == DestAbstract {
				if len(w) > maxAbstract && !hasMeta(d.Glob) {
					t.Fatalf("%q matches only names longer than %d bytes", s, maxAbstract)
				}
				return
			}
			if path.Clean(w) != w || w == "/" || strings.IndexByte(w, 0) >= 0 {
				if !strings.ContainsAny(d.Glob, "[?*") {
					t.Fatalf("%q matches only %q, which no connect resolves to", s, w)
				}
			}
		}
	})
}

// globWitness finds a name glob matches: '*' and '?' become "x", a class
// its first member that is not '/'.
func globWitness(g string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(g); i++ {
		switch c := g[i]; c {
		case '\\':
			if i++; i < len(g) {
				b.WriteByte(g[i])
			}
		case '*', '?':
			b.WriteByte('x')
		case '[':
			end := i + 1
			if end < len(g) && g[end] == '^' {
				end++
			}
			for first := true; end < len(g) && (g[end] != ']' || first); end++ {
				if g[end] == '\\' {
					end++
				}
				first = false
			}
			if end >= len(g) {
				return "", false
			}
			class := g[i : end+1]
			found := false
			for _, r := range "xaA0_-." + g[i+1:end] {
				if r != '/' && r != utf8.RuneError {
					if ok, _ := path.Match(class, string(r)); ok {
						b.WriteRune(r)
						found = true
						break
					}
				}
			}
			if !found {
				return "", false
			}
			i = end
		default:
			b.WriteByte(c)
		}
	}
	ok, _ := path.Match(g, b.String())
	return b.String(), ok
}
