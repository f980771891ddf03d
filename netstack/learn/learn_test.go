package learn

import (
	"math/rand"
	"net/netip"
	"path"
	"reflect"
	"strings"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

var t0 = time.Date(2026, 12, 1, 21, 50, 0, 0, time.UTC)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func tcp(addr, name string) Use {
	return Use{Kind: Inet, Proto: "tcp", Addr: ap(addr), Name: name, Count: 1}
}

func udp(addr, name string) Use {
	return Use{Kind: Inet, Proto: "udp", Addr: ap(addr), Name: name, Count: 1}
}

func TestRender(t *testing.T) {
	tests := []struct {
		name      string
		use       Use
		ephemeral [2]uint16
		dest      string // "" for no rule
		group     Group
		family    string
	}{
		{name: "name", use: tcp("10.0.0.1:443", "api.example.com"), dest: "tcp:api.example.com:443", group: Names},
		{name: "name normalized", use: tcp("10.0.0.1:443", "API.Example.COM."), dest: "tcp:api.example.com:443", group: Names},
		{name: "name to 53 stays a name", use: udp("10.0.0.1:53", "dns.test"), dest: "udp:dns.test:53", group: Names},
		{name: "bad name falls back to the address", use: tcp("10.0.0.1:443", "not a name"), dest: "tcp:10.0.0.1:443", group: Addresses},
		{name: "digits are no name", use: tcp("10.0.0.1:443", "1234"), dest: "tcp:10.0.0.1:443", group: Addresses},
		{name: "ipv4", use: tcp("10.1.2.3:80", ""), dest: "tcp:10.1.2.3:80", group: Addresses},
		{name: "resolver", use: udp("10.0.0.2:53", ""), dest: "udp:10.0.0.2:53", group: Resolvers},
		{name: "ipv6 brackets", use: tcp("[fd00::1]:8080", ""), dest: "tcp:[fd00::1]:8080", group: Addresses},
		{name: "ipv6 resolver", use: udp("[2001:db8::53]:53", ""), dest: "udp:[2001:db8::53]:53", group: Resolvers},
		{name: "v4-mapped unmapped", use: tcp("[::ffff:10.0.0.1]:80", ""), dest: "tcp:10.0.0.1:80", group: Addresses},
		{name: "zone dropped", use: tcp("[fe80::1%eth0]:80", ""), dest: "tcp:[fe80::1]:80", group: Addresses},
		{name: "no proto", use: Use{Kind: Inet, Addr: ap("10.0.0.1:80")}, dest: "10.0.0.1:80", group: Addresses},
		{name: "proto case", use: Use{Kind: Inet, Proto: "UDP", Addr: ap("10.0.0.1:80")}, dest: "udp:10.0.0.1:80", group: Addresses},
		{name: "invalid addr", use: Use{Kind: Inet, Proto: "tcp"}},
		{name: "ephemeral", use: udp("10.0.0.1:40000", ""), dest: "udp:10.0.0.1:32768-60999", group: Addresses},
		{name: "ephemeral low end", use: udp("10.0.0.1:32768", ""), dest: "udp:10.0.0.1:32768-60999", group: Addresses},
		{name: "ephemeral high end", use: udp("10.0.0.1:60999", ""), dest: "udp:10.0.0.1:32768-60999", group: Addresses},
		{name: "below ephemeral", use: udp("10.0.0.1:32767", ""), dest: "udp:10.0.0.1:32767", group: Addresses},
		{name: "above ephemeral", use: udp("10.0.0.1:61000", ""), dest: "udp:10.0.0.1:61000", group: Addresses},
		{name: "ephemeral by name", use: tcp("10.0.0.1:50000", "peer.test"), dest: "tcp:peer.test:32768-60999", group: Names},
		{name: "ephemeral ipv6", use: tcp("[::1]:50000", ""), dest: "tcp:[::1]:32768-60999", group: Addresses},
		{name: "custom range", use: tcp("10.0.0.1:4000", ""), ephemeral: [2]uint16{1024, 5000}, dest: "tcp:10.0.0.1:1024-5000", group: Addresses},
		{name: "custom range, outside", use: tcp("10.0.0.1:40000", ""), ephemeral: [2]uint16{1024, 5000}, dest: "tcp:10.0.0.1:40000", group: Addresses},
		{name: "custom range reversed", use: tcp("10.0.0.1:4000", ""), ephemeral: [2]uint16{5000, 1024}, dest: "tcp:10.0.0.1:1024-5000", group: Addresses},
		{name: "53 in a custom range", use: udp("10.0.0.1:53", ""), ephemeral: [2]uint16{1, 100}, dest: "udp:10.0.0.1:1-100", group: Addresses},
		{name: "unix path", use: Use{Kind: Unix, Path: "/run/postgresql/.s.PGSQL.5432"}, dest: "unix:/run/postgresql/.s.PGSQL.5432", group: UnixSockets},
		{name: "unix unclean path", use: Use{Kind: Unix, Path: "/run//x/./s"}, dest: "unix:/run/x/s", group: UnixSockets},
		{name: "unix abstract", use: Use{Kind: Unix, Path: "/tmp/.X11-unix/X0", Abstract: true}, dest: "unix:@/tmp/.X11-unix/X0", group: UnixSockets},
		{name: "unix empty abstract", use: Use{Kind: Unix, Abstract: true}, dest: "unix:@", group: UnixSockets},
		{name: "unix unnamed", use: Use{Kind: Unix}},
		{name: "unix relative", use: Use{Kind: Unix, Path: "sock"}},
		{name: "unix root", use: Use{Kind: Unix, Path: "/"}},
		{name: "other", use: Use{Kind: Other, Family: "netlink"}, dest: "*", group: OtherFamilies, family: "other"},
		{name: "self", use: Use{Kind: Inet, Proto: "tcp", Addr: ap("127.0.0.1:8080"), Self: true}},
		{name: "no kind", use: Use{Proto: "tcp", Addr: ap("127.0.0.1:8080")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules := Rules([]Use{tt.use}, Options{Ephemeral: tt.ephemeral})
			if tt.dest == "" {
				if len(rules) != 0 {
					t.Fatalf("got %+v, want no rule", rules)
				}
				return
			}
			if len(rules) != 1 {
				t.Fatalf("got %d rules, want 1", len(rules))
			}
			r := rules[0]
			if r.Dest != tt.dest || r.Group != tt.group || r.Family != tt.family {
				t.Errorf("got %q %v family %q, want %q %v family %q", r.Dest, r.Group, r.Family, tt.dest, tt.group, tt.family)
			}
		})
	}
}

func TestGlobEscape(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		abstract bool
		dest     string // "" to check matching only
		sibling  string // a name the rule must not match
	}{
		{"star", "/tmp/a*b", false, `unix:/tmp/a\*b`, "/tmp/aXb"},
		{"question", "/tmp/a?b", false, `unix:/tmp/a\?b`, "/tmp/aXb"},
		{"class", "/tmp/[ab]", false, `unix:/tmp/\[ab]`, "/tmp/a"},
		{"backslash", `/tmp/a\b`, false, `unix:/tmp/a\\b`, "/tmp/ab"},
		{"lone star", "/tmp/*", false, `unix:/tmp/\*`, "/tmp/x"},
		{"abstract star", "name*", true, `unix:@name\*`, "nameX"},
		{"abstract slash star", "a/b*", true, `unix:@a/b\*`, "a/bc"},
		{"trailing space", "/tmp/sock ", false, "unix:/tmp/sock[ ]", "/tmp/sockX"},
		{"trailing tab", "x\t", true, "unix:@x[\t]", "x "},
		{"spaces inside", "/tmp/my sock", false, "unix:/tmp/my sock", "/tmp/my_sock"},
		{"invalid utf-8", "a\xffb", true, "unix:@a?b", "a/b"},
		{"nul", "a\x00b", true, "unix:@a?b", "a/b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules := Rules([]Use{{Kind: Unix, Path: tt.path, Abstract: tt.abstract}}, Options{})
			if len(rules) != 1 {
				t.Fatalf("got %d rules", len(rules))
			}
			d := rules[0].Dest
			if tt.dest != "" && d != tt.dest {
				t.Errorf("dest %q, want %q", d, tt.dest)
			}
			if strings.TrimSpace(d) != d {
				t.Errorf("dest %q has white space the policy trims", d)
			}
			pattern := unixPattern(t, d, tt.abstract)
			if ok, err := path.Match(pattern, tt.path); !ok || err != nil {
				t.Errorf("path.Match(%q, %q) = %v, %v; want true", pattern, tt.path, ok, err)
			}
			if ok, _ := path.Match(pattern, tt.sibling); ok {
				t.Errorf("path.Match(%q, %q) = true; want false", pattern, tt.sibling)
			}
			if got := roundTrip(t, rules[0]); got != d {
				t.Errorf("the rule line reads back as %q, want %q", got, d)
			}
		})
	}
}

// unixPattern is the glob of a unix: dest.
func unixPattern(t *testing.T, dest string, abstract bool) string {
	t.Helper()
	prefix := "unix:"
	if abstract {
		prefix = "unix:@"
	}
	p, ok := strings.CutPrefix(dest, prefix)
	if !ok {
		t.Fatalf("dest %q lacks %q", dest, prefix)
	}
	return p
}

// roundTrip parses the rule's lines as YAML and returns its allow: value.
func roundTrip(t *testing.T, r Rule) string {
	t.Helper()
	text := ruleText(r, "", time.UTC, "\n")
	if strings.Count(text, "\n") != 1+boolInt(r.Family != "") {
		t.Errorf("rule text %q is not one line per key", text)
	}
	var items []map[string]string
	if err := yaml.Unmarshal([]byte(text), &items); err != nil || len(items) != 1 {
		t.Fatalf("rule text %q: %v", text, err)
	}
	return items[0]["allow"]
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestDedupe(t *testing.T) {
	uses := []Use{
		{Kind: Inet, Proto: "tcp", Addr: ap("10.0.0.9:443"), Name: "a.test", Count: 2, First: t0.Add(2 * time.Second), Comm: "late", PID: 3},
		{Kind: Inet, Proto: "tcp", Addr: ap("10.0.0.1:443"), Name: "a.test", Count: 1, Comm: "unknown-time", PID: 4},
		{Kind: Inet, Proto: "tcp", Addr: ap("10.0.0.1:443"), Name: "a.test", Count: 3, First: t0.Add(time.Second), Comm: "early", PID: 2, Sends: true},
		{Kind: Inet, Proto: "tcp", Addr: ap("10.0.0.1:443"), Name: "a.test", Count: 0, First: t0.Add(3 * time.Second)}, // counts as 1
		{Kind: Other, Family: "packet", First: t0},
		{Kind: Other, Family: "netlink", Count: 2, First: t0.Add(time.Second)},
		{Kind: Other, Family: "netlink"},
		{Kind: Inet, Proto: "udp", Addr: ap("10.0.0.1:40000")},
		{Kind: Inet, Proto: "udp", Addr: ap("10.0.0.1:50000")}, // the same range
	}
	got := Rules(uses, Options{})
	want := []Rule{
		{Dest: "tcp:a.test:443", Group: Names, Count: 7, First: t0.Add(time.Second), Comm: "early", PID: 2, Sends: true},
		{Dest: "udp:10.0.0.1:32768-60999", Group: Addresses, Count: 2, Ports: "40000, 50000", Remote: true},
		{Dest: "*", Group: OtherFamilies, Count: 4, First: t0, Family: "other", Families: "netlink, packet"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}
}

func TestOrder(t *testing.T) {
	want := []struct {
		dest  string
		group Group
	}{
		{"tcp:example.com:443", Names},
		{"tcp:api.example.com:443", Names},
		{"udp:api.example.com:443", Names},
		{"tcp:api.example.com:8443", Names},
		{"tcp:www.example.com:80", Names},
		{"tcp:example.org:443", Names},
		{"udp:9.9.9.9:53", Resolvers},
		{"tcp:10.0.0.2:53", Resolvers},
		{"udp:10.0.0.2:53", Resolvers},
		{"udp:[2001:db8::1]:53", Resolvers},
		{"tcp:10.0.0.9:80", Addresses},
		{"tcp:10.0.0.10:80", Addresses},
		{"tcp:10.0.0.10:443", Addresses},
		{"tcp:10.0.0.10:32768-60999", Addresses},
		{"tcp:[::1]:80", Addresses},
		{"unix:/a", UnixSockets},
		{"unix:/b", UnixSockets},
		{"unix:@a", UnixSockets},
		{"*", OtherFamilies},
	}
	uses := []Use{
		tcp("10.0.0.1:443", "example.com"),
		tcp("10.0.0.1:443", "api.example.com"),
		udp("10.0.0.1:443", "api.example.com"),
		tcp("10.0.0.1:8443", "api.example.com"),
		tcp("10.0.0.1:80", "www.example.com"),
		tcp("10.0.0.1:443", "example.org"),
		udp("9.9.9.9:53", ""),
		tcp("10.0.0.2:53", ""),
		udp("10.0.0.2:53", ""),
		udp("[2001:db8::1]:53", ""),
		tcp("10.0.0.9:80", ""),
		tcp("10.0.0.10:80", ""),
		tcp("10.0.0.10:443", ""),
		tcp("10.0.0.10:40000", ""),
		tcp("[::1]:80", ""),
		{Kind: Unix, Path: "/a"},
		{Kind: Unix, Path: "/b"},
		{Kind: Unix, Path: "a", Abstract: true},
		{Kind: Other, Family: "netlink"},
	}
	rnd := rand.New(rand.NewSource(1))
	for i := range 20 {
		rnd.Shuffle(len(uses), func(i, j int) { uses[i], uses[j] = uses[j], uses[i] })
		got := Rules(uses, Options{})
		if len(got) != len(want) {
			t.Fatalf("got %d rules, want %d", len(got), len(want))
		}
		for j, w := range want {
			if got[j].Dest != w.dest || got[j].Group != w.group {
				t.Fatalf("shuffle %d: rule %d is %q %v, want %q %v", i, j, got[j].Dest, got[j].Group, w.dest, w.group)
			}
		}
	}
}

func TestComment(t *testing.T) {
	first := t0.Add(time.Second + 123*time.Millisecond)
	tests := []struct {
		rule Rule
		loc  *time.Location
		want string
	}{
		{Rule{Count: 3, First: first, Comm: "curl", PID: 1234}, time.UTC, "3 connects, first 21:50:01.123 by curl[1234]"},
		{Rule{Count: 1, First: first, Comm: "curl", PID: 1234}, time.UTC, "1 connect, first 21:50:01.123 by curl[1234]"},
		{Rule{Count: 1, Sends: true, First: first, Comm: "dig", PID: 7}, time.UTC, "1 send, first 21:50:01.123 by dig[7]"},
		{Rule{Count: 2, Sends: true, First: first, Comm: "dig", PID: 7}, time.UTC, "2 sends, first 21:50:01.123 by dig[7]"},
		{Rule{Count: 2, First: first, Comm: "curl", PID: 1}, time.FixedZone("X", 2*3600), "2 connects, first 23:50:01.123 by curl[1]"},
		{Rule{Count: 2}, time.UTC, "2 connects"},
		{Rule{Count: 2, Comm: "curl"}, time.UTC, "2 connects by curl"},
		{Rule{Count: 2, PID: 9}, time.UTC, "2 connects by pid 9"},
		{Rule{Count: 1, Comm: "a\nb\xff", PID: 9}, time.UTC, "1 connect by a?b?[9]"},
		{Rule{Count: 2, Families: "netlink, packet", First: first}, time.UTC, "2 connects (netlink, packet), first 21:50:01.123"},
	}
	for _, tt := range tests {
		if got := comment(tt.rule, tt.loc); got != tt.want {
			t.Errorf("comment(%+v) = %q, want %q", tt.rule, got, tt.want)
		}
	}
}

func TestQuoting(t *testing.T) {
	tests := []struct {
		rule Rule
		want string
	}{
		{Rule{Dest: "*", Family: "other", Count: 1}, "- allow: '*'  # 1 connect\n  family: other\n"},
		{Rule{Dest: "unix:@x", Count: 1}, "- allow: unix:@x  # 1 connect\n"},
		{Rule{Dest: "tcp:[fd00::1]:8080", Count: 1}, "- allow: tcp:[fd00::1]:8080  # 1 connect\n"},
		{Rule{Dest: "unix:/a #b", Count: 1}, "- allow: 'unix:/a #b'  # 1 connect\n"},
		{Rule{Dest: "unix:@a: b", Count: 1}, "- allow: 'unix:@a: b'  # 1 connect\n"},
		{Rule{Dest: "unix:@a\nb", Count: 1}, "- allow: \"unix:@a\\nb\"  # 1 connect\n"},
	}
	for _, tt := range tests {
		got := ruleText(tt.rule, "", time.UTC, "\n")
		if got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
		if back := roundTrip(t, tt.rule); back != tt.rule.Dest {
			t.Errorf("%q reads back as %q", got, back)
		}
	}
}

func TestWrite(t *testing.T) {
	tests := []struct {
		name string
		uses []Use
		cmd  []string
		want string
	}{
		{
			name: "one rule",
			uses: []Use{{Kind: Inet, Proto: "tcp", Addr: ap("10.0.0.1:8443"), Name: "web.test", Count: 1, First: t0.Add(123 * time.Millisecond), Comm: "curl", PID: 1234}},
			cmd:  []string{"curl", "-s", "https://web.test:8443/"},
			want: `# Learned by sandbox learn at 2026-12-01T21:50:00Z from: curl -s https://web.test:8443/
# Review it, then: sandbox run --policy FILE -- PROGRAM
version: 1
default: deny
rules:
  # Hosts by name: their addresses follow the program's own DNS lookups
  - allow: tcp:web.test:8443  # 1 connect, first 21:50:00.123 by curl[1234]
`,
		},
		{
			name: "nothing",
			want: `# Learned by sandbox learn at 2026-12-01T21:50:00Z
# Review it, then: sandbox run --policy FILE -- PROGRAM
version: 1
default: deny
rules: []
`,
		},
		{
			name: "self only",
			uses: []Use{{Kind: Inet, Self: true, Count: 2}, {Kind: Unix, Path: "/x", Self: true}, {Kind: Unix}},
			cmd:  []string{"sh", "-c", "echo 'hi' | nc -l 8080"},
			want: `# Learned by sandbox learn at 2026-12-01T21:50:00Z from: sh -c 'echo '\''hi'\'' | nc -l 8080'
# Review it, then: sandbox run --policy FILE -- PROGRAM
version: 1
default: self  # the tree's own listeners (3 uses)
rules: []
`,
		},
		{
			name: "every group",
			uses: []Use{
				{Kind: Other, Family: "netlink", Sends: true, Count: 2, First: t0, Comm: "ip", PID: 5},
				{Kind: Unix, Path: "/run/a*b", Count: 1, First: t0, Comm: "app", PID: 6},
				{Kind: Inet, Proto: "tcp", Addr: ap("[fd00::1]:40000"), Count: 2, First: t0, Comm: "app", PID: 6},
				{Kind: Inet, Proto: "udp", Addr: ap("10.0.0.2:53"), Count: 3, Sends: true, First: t0, Comm: "app", PID: 6},
				{Kind: Inet, Proto: "tcp", Addr: ap("10.0.0.1:443"), Name: "api.test", Count: 1, First: t0, Comm: "app", PID: 6},
				{Kind: Inet, Proto: "tcp", Addr: ap("127.0.0.1:8080"), Self: true, Count: 1},
			},
			cmd: []string{"app"},
			want: `# Learned by sandbox learn at 2026-12-01T21:50:00Z from: app
# Review it, then: sandbox run --policy FILE -- PROGRAM
version: 1
default: self  # the tree's own listeners (1 use)
rules:
  # Hosts by name: their addresses follow the program's own DNS lookups
  - allow: tcp:api.test:443  # 1 connect, first 21:50:00.000 by app[6]
  # DNS resolvers
  - allow: udp:10.0.0.2:53  # 3 sends, first 21:50:00.000 by app[6]
  # Addresses
  - allow: tcp:[fd00::1]:32768-60999  # 2 connects, first 21:50:00.000 by app[6]; seen at 40000, of the ephemeral range (a fixed port? write it instead)
  # Unix sockets
  - allow: unix:/run/a\*b  # 1 connect, first 21:50:00.000 by app[6]
  # Other socket families
  - allow: '*'  # 2 sends (netlink), first 21:50:00.000 by ip[5]
    family: other
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Options{Now: t0, Command: tt.cmd}
			out := Write(tt.uses, o)
			if string(out) != tt.want {
				t.Errorf("got\n%s\nwant\n%s", out, tt.want)
			}
			checkParses(t, out, Rules(tt.uses, o))
		})
	}
}

type policyFile struct {
	Version int
	Default string
	Rules   []map[string]any
}

// checkParses decodes a written policy and compares its rules with rules.
func checkParses(t *testing.T, out []byte, rules []Rule) {
	t.Helper()
	var p policyFile
	if err := yaml.Unmarshal(out, &p); err != nil {
		t.Fatalf("output does not parse: %v\n%s", err, out)
	}
	if p.Version != 1 || (p.Default != "deny" && p.Default != "self") {
		t.Errorf("version %d, default %q", p.Version, p.Default)
	}
	if len(p.Rules) != len(rules) {
		t.Fatalf("%d rules parsed, want %d", len(p.Rules), len(rules))
	}
	for i, r := range rules {
		want := map[string]any{"allow": r.Dest}
		if r.Family != "" {
			want["family"] = r.Family
		}
		if !reflect.DeepEqual(p.Rules[i], want) {
			t.Errorf("rule %d parsed as %v, want %v", i, p.Rules[i], want)
		}
	}
}

func TestWriteParsesOddNames(t *testing.T) {
	uses := []Use{
		{Kind: Unix, Path: "/tmp/a #b: c"},
		{Kind: Unix, Path: "'quoted\" [x]", Abstract: true},
		{Kind: Unix, Path: "line\nbreak\r", Abstract: true},
		{Kind: Unix, Path: "-dash", Abstract: true},
		{Kind: Unix, Path: "\u0085nel\u2028", Abstract: true},
		{Kind: Other},
	}
	o := Options{Now: t0, Command: []string{"a\nb", "#c"}}
	out := Write(uses, o)
	checkParses(t, out, Rules(uses, o))
}

// TestWidenedPortsAreNamed: a port of the ephemeral range is written as
// the range, wherever the host is (ephemeral ports never appear), and the
// rule's comment names the ports seen; for a host that is not this
// machine's it asks for a fixed port to be written instead.
func TestWidenedPortsAreNamed(t *testing.T) {
	local := func(a netip.Addr) bool { return a == netip.MustParseAddr("10.0.0.7") }
	for _, tt := range []struct {
		use    Use
		remote bool
	}{
		{tcp("127.0.0.1:40000", ""), false},
		{tcp("[::1]:40000", ""), false},
		{tcp("10.0.0.7:40000", ""), false},
		{tcp("10.0.0.1:40000", ""), true},
		{tcp("10.0.0.1:40000", "peer.test"), true},
	} {
		rules := Rules([]Use{tt.use}, Options{Local: local})
		if len(rules) != 1 || !strings.HasSuffix(rules[0].Dest, ":32768-60999") || rules[0].Ports != "40000" || rules[0].Remote != tt.remote {
			t.Errorf("%v: %+v, want the range, port 40000 named, remote %v", tt.use.Addr, rules, tt.remote)
		}
		c := comment(rules[0], time.UTC)
		if !strings.Contains(c, "seen at 40000") || strings.Contains(c, "a fixed port?") != tt.remote {
			t.Errorf("%v: comment %q", tt.use.Addr, c)
		}
	}
}
