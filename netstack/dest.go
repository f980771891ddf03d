package netstack

import (
	"fmt"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// Resolver turns a hostname written in a policy into addresses. It is called
// once, when the policy loads. The program may later resolve the same name
// differently (DNS changes, round robin, a CDN): a DEST by name also matches
// what the program's own lookups return (see Names).
type Resolver func(host string) ([]netip.Addr, error)

// DestKind says which of the DEST forms a Dest is.
type DestKind uint8

const (
	// DestAny ("*" or "any") matches every destination of every family.
	DestAny DestKind = iota
	// DestInet matches IP destinations: prefixes and a port range.
	DestInet
	// DestUnix matches Unix socket paths with a path.Match glob.
	DestUnix
	// DestAbstract matches abstract Unix socket names with a path.Match glob.
	DestAbstract
	// DestUnixAny ("unix:*") matches every Unix destination: path, abstract
	// or unnamed.
	DestUnixAny
)

// PortRange is an inclusive range of ports.
type PortRange struct{ Lo, Hi uint16 }

// AllPorts is the range a DEST without a port stands for.
var AllPorts = PortRange{0, 65535}

// Contains reports whether p is in the range.
func (pr PortRange) Contains(p uint16) bool { return pr.Lo <= p && p <= pr.Hi }

func (pr PortRange) String() string {
	if pr.Lo == pr.Hi {
		return strconv.Itoa(int(pr.Lo))
	}
	return fmt.Sprintf("%d-%d", pr.Lo, pr.Hi)
}

// TypeSet is a set of socket types. The zero value means every type.
type TypeSet uint8

// TypeSetOf returns the set holding just t.
func TypeSetOf(t SockType) TypeSet { return 1 << t }

// Has reports whether t is in the set.
func (s TypeSet) Has(t SockType) bool { return s == 0 || s&TypeSetOf(t) != 0 }

// FamilySet is a set of families. The zero value means every family.
type FamilySet uint8

// FamilySetOf returns the set holding just f.
func FamilySetOf(f Family) FamilySet { return 1 << f }

// Has reports whether f is in the set.
func (s FamilySet) Has(f Family) bool { return s == 0 || s&FamilySetOf(f) != 0 }

// Dest is one parsed DEST. See README.md for the syntax.
type Dest struct {
	Kind DestKind
	// Types is TypeSetOf(TypeStream) after "tcp:", TypeSetOf(TypeDgram)
	// after "udp:", and 0 (any) otherwise.
	Types TypeSet
	// Prefixes are the IP prefixes of a DestInet; nil means every address,
	// IPv4 and IPv6. IPv4 prefixes are never written as v4-mapped IPv6.
	Prefixes []netip.Prefix
	// Host is the host name of a DEST by name, normalized (NameOf): exact,
	// or "*.example.com" for the names below example.com. Prefixes are then
	// what the name resolved to when the policy loaded (none for a glob),
	// and the DEST also matches every address the program's own lookups
	// returned for a matching name (Request.Names).
	Host string
	// Unresolved says why an exact Host has no load-time addresses.
	Unresolved string
	Ports      PortRange // DestInet only
	Glob       string    // DestUnix (absolute) and DestAbstract (without the '@')
}

// ParseDest parses one DEST, one of:
//
//	any (or *)                            every destination
//	[tcp:|udp:]ADDR[/BITS][:PORT[-PORT]]  IPv4, or IPv6 in brackets
//	[tcp:|udp:]IPV6[/BITS]                bare IPv6, no port
//	[tcp:|udp:]*[:PORT[-PORT]]            every IP address
//	[tcp:|udp:]HOST[:PORT[-PORT]]         by name: resolved now, through resolve,
//	                                      and by the program's own lookups
//	[tcp:|udp:]*.DOMAIN[:PORT[-PORT]]     the names below DOMAIN, by lookups
//	unix:/PATH-GLOB, unix:@NAME-GLOB, unix:*
//
// resolve may be nil: names then match only through the program's lookups.
// A name that does not resolve now is no error (Dest.Unresolved says why).
func ParseDest(s string, resolve Resolver) (Dest, error) {
	d, err := parseDest(strings.TrimSpace(s), resolve)
	if err != nil {
		return Dest{}, fmt.Errorf("destination %q: %s", s, err)
	}
	return d, nil
}

const destForms = "expected *, ADDR[/BITS][:PORT[-PORT]], [IPV6][:PORT], tcp:…, udp:…, unix:/PATH or unix:@NAME"

func parseDest(s string, resolve Resolver) (Dest, error) {
	switch s {
	case "":
		return Dest{}, fmt.Errorf("empty; %s", destForms)
	case "*", "any":
		return Dest{Kind: DestAny}, nil
	}
	scheme, rest, ok := strings.Cut(s, ":")
	if ok && scheme == "unix" { // paths may hold spaces
		return parseUnixDest(rest)
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return Dest{}, fmt.Errorf("contains white space; %s", destForms)
	}
	switch {
	case ok && scheme == "tcp":
		return parseInetDest(rest, TypeSetOf(TypeStream), resolve)
	case ok && scheme == "udp":
		return parseInetDest(rest, TypeSetOf(TypeDgram), resolve)
	}
	d, err := parseInetDest(s, 0, resolve)
	if err != nil && ok && isWord(scheme) {
		if _, perr := parsePorts(rest); perr != nil { // not HOST:PORT either
			return Dest{}, fmt.Errorf("unknown scheme %q: expected tcp:, udp: or unix:", scheme+":")
		}
	}
	return d, err
}

func parseUnixDest(rest string) (Dest, error) {
	switch {
	case rest == "*":
		return Dest{Kind: DestUnixAny}, nil
	case strings.HasPrefix(rest, "@"):
		glob := rest[1:]
		if _, err := path.Match(glob, ""); err != nil {
			return Dest{}, fmt.Errorf("bad glob %q after unix:@: expected a path.Match pattern", glob)
		}
		if !hasMeta(glob) && len(glob) > maxAbstract {
			return Dest{}, fmt.Errorf("abstract name of %d bytes: a socket address holds at most %d, so nothing can connect to it", len(glob), maxAbstract)
		}
		return Dest{Kind: DestAbstract, Glob: glob}, nil
	case strings.HasPrefix(rest, "/"):
		if _, err := path.Match(rest, ""); err != nil {
			return Dest{}, fmt.Errorf("bad glob %q after unix: expected a path.Match pattern", rest)
		}
		if err := checkUnixGlob(rest); err != nil {
			return Dest{}, err
		}
		return Dest{Kind: DestUnix, Glob: rest}, checkUnixOnHost(rest)
	}
	return Dest{}, fmt.Errorf("expected an absolute path, @NAME or * after unix: (the sandbox resolves relative paths before matching, so write the absolute one)")
}

// maxAbstract is the longest abstract name: sun_path's 108 bytes less the
// leading NUL.
const maxAbstract = 107

func hasMeta(glob string) bool { return strings.ContainsAny(glob, `*?[\`) }

// checkUnixGlob rejects path globs that can match no path a Unix connect
// resolves to: the sandbox matches the resolved, clean, absolute path of
// the socket file, never a directory.
func checkUnixGlob(glob string) error {
	switch {
	case strings.IndexByte(glob, 0) >= 0:
		return fmt.Errorf("unix:%q contains a NUL byte, which no path holds", glob)
	case glob == "/":
		return fmt.Errorf("unix:/ is a directory, never a socket: write unix:/* for the sockets in /, or unix:* for every Unix socket")
	case strings.HasSuffix(glob, "/"):
		dir := strings.TrimRight(glob, "/")
		return fmt.Errorf("unix:%s ends in /: a socket is a file, never a directory; for the sockets in it write unix:%s/*", glob, dir)
	case path.Clean(glob) != glob:
		return fmt.Errorf("unix:%s is not a clean path: the sandbox matches the path the kernel resolves, which has no //, . or ..; write unix:%s", glob, path.Clean(glob))
	}
	return nil
}

// checkUnixOnHost catches globs that the host's file system shows can
// never match: a directory, or a path through a symbolic link (the sandbox
// matches the resolved path, as the kernel connects to the link's target).
// Only the literal part of a glob is looked at; what does not exist (yet)
// is fine.
func checkUnixOnHost(glob string) error {
	lit := glob
	if i := strings.IndexAny(glob, `*?[\`); i >= 0 {
		lit = glob[:strings.LastIndexByte(glob[:i], '/')+1]
	}
	whole := lit == glob
	p := strings.TrimSuffix(lit, "/")
	for p != "" && p != "/" {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			p, whole = path.Dir(p), false // the longest prefix that exists
			continue
		}
		if real != p {
			return fmt.Errorf("unix:%s goes through a symbolic link (%s is %s): the sandbox matches the path the kernel connects to, so write unix:%s",
				glob, p, real, real+glob[len(p):])
		}
		if fi, err := os.Stat(p); err == nil && fi.IsDir() && whole {
			return fmt.Errorf("unix:%s is a directory, and a connect never names a directory: for the sockets in it write unix:%s/*", glob, glob)
		}
		return nil
	}
	return nil
}

func parseInetDest(s string, types TypeSet, resolve Resolver) (Dest, error) {
	d := Dest{Kind: DestInet, Types: types, Ports: AllPorts}
	if s == "" {
		return Dest{}, fmt.Errorf("expected an address, * or a hostname")
	}
	var addr, ports string
	hasPorts := false
	switch {
	case s[0] == '[':
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return Dest{}, fmt.Errorf("expected ] after the IPv6 address")
		}
		addr, ports = s[1:end], s[end+1:]
		if strings.HasPrefix(ports, "/") { // [fd00::]/8 as well as [fd00::/8]
			bits, after, _ := strings.Cut(ports, ":")
			addr += bits
			ports, hasPorts = after, strings.Contains(ports, ":")
		} else if ports != "" {
			if ports[0] != ':' {
				return Dest{}, fmt.Errorf("expected :PORT after ], got %q", ports)
			}
			ports, hasPorts = ports[1:], true
		}
		if !strings.Contains(addr, ":") {
			return Dest{}, fmt.Errorf("expected an IPv6 address inside [ ], got %q (write IPv4 without brackets)", addr)
		}
	case strings.Count(s, ":") >= 2:
		addr = s // bare IPv6: a port would be ambiguous, so there is none
		if err := bareIPv6WithPort(s); err != nil {
			return Dest{}, err
		}
	default:
		addr, ports, hasPorts = strings.Cut(s, ":")
	}
	if hasPorts {
		pr, err := parsePorts(ports)
		if err != nil {
			return Dest{}, err
		}
		d.Ports = pr
	}
	switch {
	case addr == "*" || addr == "any":
		if types == 0 && !hasPorts {
			return Dest{Kind: DestAny}, nil
		}
		return d, nil
	case isNamePattern(addr):
		d.Host = NameOf(addr)
		switch d.Host {
		case "any":
			return Dest{}, fmt.Errorf("%q reads as a host name; for every destination write any or * in lower case", addr)
		case "tcp", "udp", "unix":
			// Written back, it would read as the scheme: "TCP:0" is no
			// host named tcp.
			return Dest{}, fmt.Errorf("%q reads as a host name; write the scheme in lower case (%s:)", addr, d.Host)
		}
		if strings.HasPrefix(d.Host, "*.") || resolve == nil {
			return d, nil // matched through the program's lookups only
		}
		addrs, err := resolve(d.Host)
		if err != nil {
			d.Unresolved = err.Error()
			return d, nil
		}
		for _, a := range addrs {
			p := netip.PrefixFrom(a.Unmap().WithZone(""), a.Unmap().BitLen())
			if a.IsValid() && !containsPrefix(d.Prefixes, p) {
				d.Prefixes = append(d.Prefixes, p)
			}
		}
		if len(d.Prefixes) == 0 {
			d.Unresolved = "no address"
		}
		return d, nil
	}
	if h, _, ok := strings.Cut(addr, "/"); ok && isNamePattern(h) {
		return Dest{}, fmt.Errorf("hostname %q takes no /BITS", h)
	}
	p, err := parsePrefix(addr)
	if err != nil {
		return Dest{}, err
	}
	d.Prefixes = []netip.Prefix{p}
	return d, nil
}

// bareIPv6WithPort rejects a bare IPv6 address whose last group reads as a
// port (::1:8080): it would silently mean the address ::1:8080 on every
// port.
func bareIPv6WithPort(s string) error {
	if strings.Contains(s, "/") {
		return nil
	}
	i := strings.LastIndexByte(s, ':')
	head, tail := s[:i], s[i+1:]
	if _, err := parsePorts(tail); err != nil {
		return nil
	}
	if _, err := netip.ParseAddr(head); err != nil || strings.Contains(head, "%") {
		return nil
	}
	if _, err := netip.ParseAddr(s); err != nil {
		return fmt.Errorf("an IPv6 address takes its port after brackets: write [%s]:%s", head, tail)
	}
	return fmt.Errorf("%s is ambiguous: for port %s on %s write [%s]:%s; for the address %s on every port write [%s]", s, tail, head, head, tail, s, s)
}

// parsePrefix parses ADDR or ADDR/BITS, rejects zones and host bits, and
// writes v4-mapped IPv6 as IPv4: a v4-mapped address counts as its IPv4 one.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "%") {
		return netip.Prefix{}, fmt.Errorf("address %q: zones (%%IFACE) are not supported", s)
	}
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("expected an IP address, got %q", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("expected ADDR/BITS, got %q", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%s has host bits set: expected %s", s, p.Masked())
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p, nil
}

func parsePorts(s string) (PortRange, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	l, err1 := parsePort(lo)
	h, err2 := parsePort(hi)
	if !isRange {
		h, err2 = l, nil
	}
	if err1 != nil || err2 != nil {
		return PortRange{}, fmt.Errorf("expected PORT or PORT-PORT (0-65535), got %q", s)
	}
	if l > h {
		return PortRange{}, fmt.Errorf("port range %q: expected the first port not above the second", s)
	}
	return PortRange{l, h}, nil
}

func parsePort(s string) (uint16, error) {
	if s == "" || len(s) > 5 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("bad port")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > 65535 {
		return 0, fmt.Errorf("bad port")
	}
	return uint16(n), nil
}

func isWord(s string) bool {
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return s != ""
}

// isNamePattern reports whether s is a host name or a "*." glob of one.
func isNamePattern(s string) bool {
	if rest, ok := strings.CutPrefix(s, "*."); ok {
		return looksLikeHostname(rest)
	}
	return looksLikeHostname(s)
}

// looksLikeHostname reports whether s is a DNS name rather than a malformed
// address: dot-separated labels of letters, digits, '-' and '_', with at
// least one character that is not a digit or a dot.
func looksLikeHostname(s string) bool {
	if s == "" || len(s) > 253 || strings.Trim(s, "0123456789.") == "" {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' {
			return false
		}
		for _, c := range label {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func containsPrefix(ps []netip.Prefix, p netip.Prefix) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// String renders d in the canonical DEST syntax; ParseDest reads it back
// (a hostname form is written as the hostname: see Expand).
func (d Dest) String() string {
	switch d.Kind {
	case DestAny:
		return "*"
	case DestUnixAny:
		return "unix:*"
	case DestUnix:
		return "unix:" + d.Glob
	case DestAbstract:
		return "unix:@" + d.Glob
	}
	var b strings.Builder
	switch d.Types {
	case TypeSetOf(TypeStream):
		b.WriteString("tcp:")
	case TypeSetOf(TypeDgram):
		b.WriteString("udp:")
	}
	switch {
	case d.Host != "":
		b.WriteString(d.Host)
	case len(d.Prefixes) == 0:
		b.WriteString("*")
	default:
		p := d.Prefixes[0]
		s := p.String()
		if p.IsSingleIP() {
			s = p.Addr().String()
		}
		if p.Addr().Is6() {
			s = "[" + s + "]"
		}
		b.WriteString(s)
	}
	switch {
	case d.Ports != AllPorts:
		b.WriteString(":" + d.Ports.String())
	case d.Types == 0 && len(d.Prefixes) == 0 && d.Host == "":
		b.WriteString(":0-65535") // bare "*" would mean every family
	}
	return b.String()
}

// Expand returns one Dest per prefix, so that each can be written in the
// DEST syntax (a hostname that resolved to several addresses).
func (d Dest) Expand() []Dest {
	if d.Kind != DestInet || (len(d.Prefixes) <= 1 && d.Host == "") || (d.Host != "" && len(d.Prefixes) == 0) {
		return []Dest{d}
	}
	out := make([]Dest, len(d.Prefixes))
	for i, p := range d.Prefixes {
		e := d
		e.Host, e.Prefixes = "", []netip.Prefix{p}
		out[i] = e
	}
	return out
}

// Matches reports whether the request's destination matches d, as an
// allowing rule's DEST. Family and type filters of a rule are checked by
// Rule.Matches, not here.
func (d Dest) Matches(r Request) bool { return d.matches(r, false) }

// matches is Matches; strict (a rule that does not allow) keeps matching a
// name's load-time addresses whatever the program's lookups say: a lookup
// may narrow what an allow by name covers, never lift a deny (an attacker's
// own zone can give any address a name).
func (d Dest) matches(r Request, strict bool) bool {
	switch d.Kind {
	case DestAny:
		return true
	case DestUnixAny:
		return r.Family == FamilyUnix
	case DestUnix:
		if r.Family != FamilyUnix || r.Unix.Abstract || r.Unix.Path == "" {
			return false
		}
		ok, _ := path.Match(d.Glob, r.Unix.Path)
		return ok
	case DestAbstract:
		if r.Family != FamilyUnix || !r.Unix.Abstract {
			return false
		}
		if d.Glob == "*" { // abstract names often hold '/', which a path.Match '*' would not cross
			return true
		}
		ok, _ := path.Match(d.Glob, r.Unix.Name)
		return ok
	case DestInet:
		a, ok := inetAddr(r)
		if !ok || !d.Types.Has(r.Type) || !d.Ports.Contains(r.Addr.Port()) {
			return false
		}
		if len(d.Prefixes) == 0 && d.Host == "" {
			return true
		}
		if d.Host != "" {
			// The program's own lookups name the address: they decide. A
			// CDN address that the policy's load-time lookup of a denied
			// name also returned is not denied to a program that looked up
			// an allowed name. Without them, load-time addresses stand in
			// (DNS over TLS or HTTPS, hard-coded addresses).
			if d.matchesNames(r.Names) {
				return true
			}
			if r.Looked && !strict {
				return false
			}
		}
		for _, p := range d.Prefixes {
			if p.Contains(a) {
				return true
			}
		}
	}
	return false
}

// matchesNames reports whether one of names (Request.Names) matches the
// DEST's host name.
func (d Dest) matchesNames(names string) bool {
	for names != "" {
		var nm string
		nm, names, _ = strings.Cut(names, " ")
		if MatchName(d.Host, nm) {
			return true
		}
	}
	return false
}

// inetAddr is the address an IP request is matched on: unmapped (a
// v4-mapped address counts as its IPv4 address) and without a zone.
func inetAddr(r Request) (netip.Addr, bool) {
	if (r.Family != FamilyInet && r.Family != FamilyInet6) || !r.Addr.IsValid() {
		return netip.Addr{}, false
	}
	return r.Addr.Addr().Unmap().WithZone(""), true
}

// coversIPv4 reports whether d can match an IPv4 destination.
func (d Dest) coversIPv4() bool {
	if d.Kind == DestAny {
		return true
	}
	if d.Kind != DestInet {
		return false
	}
	if len(d.Prefixes) == 0 || d.Host != "" { // a name may resolve to IPv4
		return true
	}
	for _, p := range d.Prefixes {
		if p.Addr().Is4() {
			return true
		}
	}
	return false
}

// UnixVerdictError says why a verdict has no twin on a Unix destination:
// what a real Unix socket could never do. explicit reports that the rule
// gave the verdict a time (timeout's DURATION, a refusal's delay).
//
// The twins: deny is a socket file the caller may not write (EACCES) or a
// security module (EPERM); refuse is a socket file nobody listens on
// (ECONNREFUSED, at once); timeout is a listener whose backlog is full (a
// blocking connect waits, until SO_SNDTIMEO ends it with EAGAIN; a
// non-blocking one gets EAGAIN). Nothing in Linux makes a Unix connect fail
// with ENETUNREACH, EHOSTUNREACH or ETIMEDOUT.
func UnixVerdictError(d Dest, a Action, explicit bool) error {
	if d.Kind != DestUnix && d.Kind != DestAbstract && d.Kind != DestUnixAny {
		return nil
	}
	switch {
	case a == Unreachable:
		return fmt.Errorf("a Unix connect never fails with ENETUNREACH or EHOSTUNREACH; use refuse (ECONNREFUSED, a socket file nobody listens on), deny (EACCES) or timeout (a listener whose backlog is full)")
	case a == Timeout && explicit:
		return fmt.Errorf("a Unix connect never times out: under timeout it waits as for a listener whose backlog is full (SO_SNDTIMEO ends the wait with EAGAIN, a non-blocking socket gets EAGAIN at once); drop the duration")
	case a == Refuse && explicit:
		return fmt.Errorf("a Unix connect to a socket nobody listens on is refused at once; drop the delay")
	}
	return nil
}
