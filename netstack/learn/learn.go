// Package learn turns the destinations a sandboxed tree used into a minimal
// policy file (Write), or adds the new ones to an existing file (Merge).
//
// It depends on no other package of the module on purpose: it only writes
// policy text, and the caller checks that text with the real policy engine.
package learn

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"

	"sandbox/internal/shell"
)

// Kind is the kind of destination of a Use.
type Kind uint8

const (
	Inet  Kind = iota + 1 // IPv4 or IPv6; zero is no kind, so a zero Use gives no rule
	Unix                  // a Unix socket path or abstract name
	Other                 // any other family (netlink, packet, ...)
)

func (k Kind) String() string {
	switch k {
	case Inet:
		return "inet"
	case Unix:
		return "unix"
	case Other:
		return "other"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Use is one destination the sandboxed tree used (connected or sent to),
// aggregated by the caller.
type Use struct {
	Kind     Kind
	Proto    string         // Inet: "tcp" or "udp" (stream or datagram); anything else gives a rule for every socket type
	Addr     netip.AddrPort // Inet: the address actually used
	Name     string         // Inet: the host name Addr came from through DNS or /etc/hosts, "" if none
	Path     string         // Unix: absolute path, or the abstract name when Abstract
	Abstract bool
	Family   string // Other: the family's name, e.g. "netlink" (for the comment only)
	Sends    bool   // the use was a send with an address (else a connect)
	Count    int    // below 1 counts as 1: the use happened
	First    time.Time
	Comm     string // the process that made the first use
	PID      int
	Self     bool // the destination was the tree's own socket: no rule, but the default becomes self
}

// Group is the section of the file a rule goes in; the constants are in
// file order.
type Group uint8

const (
	Names         Group = iota // inet rules by host name
	Resolvers                  // inet rules to port 53 without a name
	Addresses                  // the other inet rules
	UnixSockets                // unix: rules
	OtherFamilies              // the '*' rule for other families
)

func (g Group) String() string {
	if int(g) < len(groupHeaders) {
		return groupNames[g]
	}
	return "Group(" + strconv.Itoa(int(g)) + ")"
}

var groupNames = [...]string{"names", "resolvers", "addresses", "unix", "other"}

var groupHeaders = [...]string{
	"# Hosts by name: their addresses follow the program's own DNS lookups",
	"# DNS resolvers",
	"# Addresses",
	"# Unix sockets",
	"# Other socket families",
}

// Options says how uses are rendered.
type Options struct {
	Ephemeral [2]uint16 // the local port range (ip_local_port_range); zero means {32768, 60999}
	// Local reports whether an address is one of this machine's own (an
	// address of an interface of the network namespace PROGRAM ran in).
	// Loopback and unspecified addresses are local whatever it says; nil
	// means no other address is. It only changes the comment of a widened
	// port: see widen.
	Local   func(netip.Addr) bool
	Command []string  // PROGRAM and its args, for the header comment
	Now     time.Time // when the policy was learned; zero means time.Now()
}

// widen reports whether a port is written as the whole ephemeral range
// lo-hi: a port in the range was most likely taken from it by a server
// that bound port 0 (a test harness's server, a peer a test starts each
// run, on this machine or in a namespace beside it), and the next run gets
// another; ephemeral ports never appear in a learned policy. The rule's
// comment names the ports seen, and for a host that is not local asks for
// the port to be written if its service is fixed (a service at 40000 is
// indistinguishable from a port of the range).
func (o Options) widen(port, lo, hi uint16) bool { return lo <= port && port <= hi }

// local reports whether a is this machine's (Options.Local).
func (o Options) local(a netip.Addr) bool {
	return a.IsLoopback() || a.IsUnspecified() || o.Local != nil && o.Local(a)
}

func (o Options) ephemeral() (lo, hi uint16) {
	lo, hi = o.Ephemeral[0], o.Ephemeral[1]
	if lo == 0 && hi == 0 {
		return 32768, 60999
	}
	if lo > hi {
		lo, hi = hi, lo
	}
	return lo, hi
}

func (o Options) now() time.Time {
	if o.Now.IsZero() {
		return time.Now()
	}
	return o.Now
}

// Rule is one rendered rule.
type Rule struct {
	Dest     string // the allow: value, unquoted, e.g. "tcp:api.example.com:443"
	Group    Group
	Count    int
	First    time.Time
	Comm     string
	PID      int
	Sends    bool
	Family   string // the family: filter, "other" for OtherFamilies, else ""
	Families string // OtherFamilies: the families seen, e.g. "netlink, packet" (for the comment)
	// Ports, for a port widened to the ephemeral range: the ports seen,
	// e.g. "40000, 40211" (for the comment); Remote: the host is not local.
	Ports  string
	Remote bool
}

// item is a Rule being built, with what it sorts by.
type item struct {
	Rule
	key      sortKey
	families map[string]bool
	ports    map[uint16]bool // widened: the ports seen
}

type sortKey struct {
	labels []string   // Names: the labels, last first, so subdomains sort together
	addr   netip.Addr // Resolvers, Addresses
	port   uint16     // the first port written
	proto  string
	text   string // Unix: the dest; also the final tie break
}

// Rules renders uses to rules: deduplicated, grouped, sorted. Self uses,
// unnamed Unix uses and uses no rule can express give no rule.
func Rules(uses []Use, o Options) []Rule {
	byDest := map[string]*item{}
	var items []*item
	for _, u := range uses {
		if u.Self {
			continue
		}
		it, ok := render(u, o)
		if !ok {
			continue
		}
		k := it.Dest + "\x00" + it.Family
		if prev := byDest[k]; prev != nil {
			prev.add(u)
			continue
		}
		byDest[k] = it
		items = append(items, it)
	}
	slices.SortStableFunc(items, compareItems)
	rules := make([]Rule, len(items))
	for i, it := range items {
		rules[i] = it.Rule
		if it.families != nil {
			rules[i].Families = strings.Join(slices.Sorted(maps.Keys(it.families)), ", ")
		}
		if it.ports != nil {
			var ps []string
			for _, p := range slices.Sorted(maps.Keys(it.ports)) {
				ps = append(ps, strconv.Itoa(int(p)))
			}
			rules[i].Ports = strings.Join(ps, ", ")
		}
	}
	return rules
}

func count(u Use) int { return max(u.Count, 1) }

// add folds u into it: counts add up, the earliest use names the rest.
func (it *item) add(u Use) {
	it.Count += count(u)
	if earlier(u.First, it.First) {
		it.First, it.Comm, it.PID, it.Sends = u.First, u.Comm, u.PID, u.Sends
	}
	if it.families != nil && u.Family != "" {
		it.families[u.Family] = true
	}
	if it.ports != nil {
		it.ports[u.Addr.Port()] = true
	}
}

// earlier reports whether a is before b, an unknown (zero) time being the
// latest: a known first use says more.
func earlier(a, b time.Time) bool {
	if a.IsZero() {
		return false
	}
	return b.IsZero() || a.Before(b)
}

func render(u Use, o Options) (*item, bool) {
	it := &item{Rule: Rule{Count: count(u), First: u.First, Comm: u.Comm, PID: u.PID, Sends: u.Sends}}
	switch u.Kind {
	case Inet:
		return it, it.inet(u, o)
	case Unix:
		return it, it.unix(u)
	case Other:
		it.Dest, it.Group, it.Family, it.key.text = "*", OtherFamilies, "other", "*"
		it.families = map[string]bool{}
		if u.Family != "" {
			it.families[u.Family] = true
		}
		return it, true
	}
	return nil, false
}

func (it *item) inet(u Use, o Options) bool {
	a := u.Addr.Addr().Unmap().WithZone("") // the policy takes no zones
	if !a.IsValid() {
		return false
	}
	var b strings.Builder
	proto := strings.ToLower(u.Proto)
	if proto == "tcp" || proto == "udp" {
		b.WriteString(proto + ":")
	} else {
		proto = ""
	}
	name := strings.TrimSuffix(strings.ToLower(u.Name), ".")
	it.Group = Addresses
	switch {
	case validName(name):
		b.WriteString(name)
		it.Group = Names
		it.key.labels = strings.Split(name, ".")
		slices.Reverse(it.key.labels)
	case a.Is4():
		b.WriteString(a.String())
	default:
		b.WriteString("[" + a.String() + "]")
	}
	port := u.Addr.Port()
	if lo, hi := o.ephemeral(); o.widen(port, lo, hi) {
		// Picked at random from the range: another run picks another.
		fmt.Fprintf(&b, ":%d-%d", lo, hi)
		it.ports = map[uint16]bool{port: true}
		it.Remote = !o.local(a)
		port = lo
	} else {
		fmt.Fprintf(&b, ":%d", port)
		if it.Group == Addresses && port == 53 {
			it.Group = Resolvers
		}
	}
	it.Dest = b.String()
	it.key.addr, it.key.port, it.key.proto, it.key.text = a, port, proto, it.Dest
	return true
}

func (it *item) unix(u Use) bool {
	switch {
	case u.Abstract:
		it.Dest = "unix:@" + escapeGlob(u.Path)
	case strings.HasPrefix(u.Path, "/"):
		p := path.Clean(u.Path) // the policy takes clean paths only
		if p == "/" {
			return false
		}
		it.Dest = "unix:" + escapeGlob(p)
	default:
		return false // unnamed, or relative: the policy needs the absolute path
	}
	it.Group, it.key.text = UnixSockets, it.Dest
	return true
}

// escapeGlob makes a path.Match pattern that matches exactly s. Bytes YAML
// cannot hold (invalid UTF-8, NUL) become '?', which matches one byte of
// them and never '/'. A trailing white space character goes in a class, as
// the policy trims white space off its destinations.
func escapeGlob(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1, r == 0:
			b.WriteByte('?')
		case strings.ContainsRune(`*?[\`, r):
			b.WriteByte('\\')
			b.WriteRune(r)
		case i+n == len(s) && unicode.IsSpace(r):
			b.WriteString("[" + string(r) + "]")
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// validName reports whether the policy reads s as a host name: labels of
// letters, digits, '-' and '_', not all digits (that would be an address).
func validName(s string) bool {
	if s == "" || len(s) > 253 || strings.Trim(s, "0123456789.") == "" {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' {
			return false
		}
		for _, c := range l {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func compareItems(a, b *item) int {
	if c := cmp.Compare(a.Group, b.Group); c != 0 {
		return c
	}
	ka, kb := a.key, b.key
	switch a.Group {
	case Names:
		if c := slices.Compare(ka.labels, kb.labels); c != 0 {
			return c
		}
	case Resolvers, Addresses:
		if c := ka.addr.Compare(kb.addr); c != 0 {
			return c
		}
	case UnixSockets:
		// Paths before abstract names, as "unix:/" sorts before "unix:@".
		return cmp.Compare(ka.text, kb.text)
	}
	return cmp.Or(cmp.Compare(ka.port, kb.port), cmp.Compare(ka.proto, kb.proto), cmp.Compare(ka.text, kb.text))
}

// Write renders a whole policy file.
func Write(uses []Use, o Options) []byte {
	now := o.now()
	var b bytes.Buffer
	b.WriteString("# Learned by sandbox learn at " + now.Format(time.RFC3339) + from(o.Command) + "\n")
	b.WriteString("# Review it, then: sandbox run --policy FILE -- PROGRAM\n")
	b.WriteString("version: 1\n")
	self := 0
	for _, u := range uses {
		if u.Self {
			self += count(u)
		}
	}
	if self > 0 {
		b.WriteString("default: self  # the tree's own listeners (" + plural(self, "use", "uses") + ")\n")
	} else {
		b.WriteString("default: deny\n")
	}
	rules := Rules(uses, o)
	if len(rules) == 0 {
		b.WriteString("rules: []\n")
		return b.Bytes()
	}
	b.WriteString("rules:\n")
	for i, r := range rules {
		if i == 0 || r.Group != rules[i-1].Group {
			b.WriteString("  " + header(r.Group) + "\n")
		}
		b.WriteString(ruleText(r, "  ", now.Location(), "\n"))
	}
	return b.Bytes()
}

func header(g Group) string {
	if int(g) < len(groupHeaders) {
		return groupHeaders[g]
	}
	return "# " + g.String()
}

func from(cmd []string) string {
	if len(cmd) == 0 {
		return ""
	}
	return " from: " + shell.Join(cmd)
}

// ruleText is the rule as list item lines at indent, ending in nl.
func ruleText(r Rule, indent string, loc *time.Location, nl string) string {
	s := indent + "- allow: " + scalar(r.Dest) + "  # " + comment(r, loc) + nl
	if r.Family != "" {
		s += indent + "  family: " + scalar(r.Family) + nl
	}
	return s
}

// comment is e.g. "3 connects, first 21:50:01.123 by curl[1234]".
func comment(r Rule, loc *time.Location) string {
	s := plural(r.Count, "connect", "connects")
	if r.Sends {
		s = plural(r.Count, "send", "sends")
	}
	if r.Families != "" {
		s += " (" + printable(r.Families) + ")"
	}
	if !r.First.IsZero() {
		s += ", first " + r.First.In(loc).Format("15:04:05.000")
	}
	switch {
	case r.Comm != "" && r.PID != 0:
		s += " by " + printable(r.Comm) + "[" + strconv.Itoa(r.PID) + "]"
	case r.Comm != "":
		s += " by " + printable(r.Comm)
	case r.PID != 0:
		s += " by pid " + strconv.Itoa(r.PID)
	}
	if r.Ports != "" {
		s += "; seen at " + r.Ports + ", of the ephemeral range"
		if r.Remote {
			s += " (a fixed port? write it instead)"
		}
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// printable keeps a comment on its line and valid UTF-8: a comm may hold
// any byte.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
}

// scalar is s as YAML writes it as a mapping value in block context: yaml.v3
// decides the quoting, and double quotes if it would take more than a line.
func scalar(s string) string {
	for _, style := range []yaml.Style{0, yaml.DoubleQuotedStyle} {
		m := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
			{Kind: yaml.ScalarNode, Tag: "!!str", Value: "allow"},
			{Kind: yaml.ScalarNode, Tag: "!!str", Value: s, Style: style},
		}}
		out, err := yaml.Marshal(m)
		q, ok := strings.CutPrefix(strings.TrimSuffix(string(out), "\n"), "allow: ")
		if err == nil && ok && !strings.Contains(q, "\n") {
			return q
		}
	}
	return strconv.Quote(s) // unreachable for what render makes: valid UTF-8
}
