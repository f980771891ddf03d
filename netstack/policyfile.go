package netstack

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	goccy "github.com/goccy/go-yaml"
	goccyparser "github.com/goccy/go-yaml/parser"
	"go.yaml.in/yaml/v3"
)

// ParsePolicy parses a YAML policy file (schema in README.md) and compiles
// it. name is the file name used in messages; resolve turns hostnames into
// addresses once, now (nil: hostnames are errors). Every error names
// name:line:column and what was expected; several are joined by newlines.
func ParsePolicy(name string, data []byte, resolve func(host string) ([]netip.Addr, error)) (*Policy, error) {
	p := &fileParser{file: name, resolve: resolve}
	def, rules, network := p.parse(data)
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return NewPolicy(name, def, rules, network)
}

type fileParser struct {
	file    string
	resolve Resolver
	errs    []error
	lines   []string // the source, to quote it in errors
}

const maxErrors = 20

func (p *fileParser) pos(n *yaml.Node) string {
	return fmt.Sprintf("%s:%d:%d", p.file, n.Line, n.Column)
}

func (p *fileParser) errf(n *yaml.Node, format string, args ...any) {
	p.errAt(n.Line, n.Column, fmt.Sprintf(format, args...))
}

// errAt records an error at line:col, as compilers print them: the
// position, the message, the offending line and a caret under the column.
func (p *fileParser) errAt(line, col int, msg string) {
	if len(p.errs) < maxErrors {
		p.errs = append(p.errs, fmt.Errorf("%s:%d:%d: %s%s", p.file, line, col, msg, p.snippet(line, col)))
	}
}

// yamlLines splits src at YAML's line breaks: CR LF, LF, and a lone CR
// (YAML 1.2, 5.4), as the parsers count lines for their positions.
func yamlLines(src string) []string {
	var out []string
	for {
		i := strings.IndexAny(src, "\r\n")
		if i < 0 {
			return append(out, src)
		}
		out = append(out, src[:i])
		if src[i] == '\r' && i+1 < len(src) && src[i+1] == '\n' {
			i++
		}
		src = src[i+1:]
	}
}

// snippet quotes source line line with a caret under column col (1-based,
// in characters; tabs are kept so that the caret lines up).
func (p *fileParser) snippet(line, col int) string {
	if line < 1 || line > len(p.lines) {
		return ""
	}
	src := p.lines[line-1]
	var pad strings.Builder
	for i, r := range []rune(src) {
		if i >= col-1 {
			break
		}
		if r == '\t' {
			pad.WriteByte('\t')
		} else {
			pad.WriteByte(' ')
		}
	}
	return fmt.Sprintf("\n%5d | %s\n      | %s^", line, src, pad.String())
}

// The error-message patterns are compiled on first use: only a policy with
// an error needs them, and compiling them at package init cost every start.
var unknownAnchor = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`unknown anchor '([^']*)' referenced`)
})

// find returns the position (1-based, columns in characters) of the first
// occurrence of tok that ends a word.
func (p *fileParser) find(tok string) (int, int, bool) {
	for i, l := range p.lines {
		for off := 0; ; {
			j := strings.Index(l[off:], tok)
			if j < 0 {
				break
			}
			end := off + j + len(tok)
			if end == len(l) || strings.ContainsRune(" \t,]}\r#", rune(l[end])) {
				return i + 1, utf8.RuneCountInString(l[:off+j]) + 1, true
			}
			off = end
		}
	}
	return 0, 0, false
}

var yamlLine = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^yaml: line (\d+): (.*)$`) })

func (p *fileParser) parse(data []byte) (Default, []Rule, *Network) {
	def := DefaultSelf
	p.lines = yamlLines(string(data))
	// yaml.v3 places a syntax error on the wrong line (often the line of
	// the enclosing block): goccy/go-yaml's parser, which tracks the
	// offending token, checks the syntax first. The tree is yaml.v3's.
	if !p.syntaxOK(data) {
		return def, nil, nil
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if err != io.EOF { // an empty file is an empty policy
			p.syntaxError(err)
		}
		return def, nil, nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		if err != nil {
			p.syntaxError(err)
		} else {
			p.errf(&extra, "expected a single YAML document, found another")
		}
		return def, nil, nil
	}
	root := deref(&doc)
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = deref(root.Content[0])
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return def, nil, nil
	}
	f := p.mapping(root, "the policy", "version", "default", "rules", "network")
	if f == nil {
		return def, nil, nil
	}
	if n := f.val("version"); n != nil {
		if s, ok := p.scalar(n, "the policy version"); ok && s != "1" {
			p.errf(n, "expected version 1, got %q", s)
		}
	}
	if n := f.val("default"); n != nil {
		def = p.defaultVerdict(n)
	}
	var rules []Rule
	if n := f.val("rules"); n != nil {
		for _, rn := range p.sequence(n, "a list of rules") {
			if rl, ok := p.rule(rn); ok {
				rules = append(rules, rl)
			}
		}
	}
	var network *Network
	if n := f.val("network"); n != nil {
		network = p.network(n)
	}
	return def, rules, network
}

// syntaxOK reports a YAML syntax error at the token where it is.
// Repeated keys are left to the schema checks, which say more.
func (p *fileParser) syntaxOK(data []byte) bool {
	_, err := goccyparser.ParseBytes(data, 0, goccyparser.AllowDuplicateMapKey())
	if err == nil {
		return true
	}
	var se *goccy.SyntaxError
	if errors.As(err, &se) && se.GetToken() != nil {
		pos := se.GetToken().Position
		p.errAt(pos.Line, pos.Column, "expected valid YAML: "+se.GetMessage())
		return false
	}
	p.errs = append(p.errs, fmt.Errorf("%s: expected valid YAML: %v", p.file, err))
	return false
}

// syntaxError reports an error yaml.v3 found after goccy/go-yaml accepted
// the file (they rarely disagree); yaml.v3's line is only approximate.
func (p *fileParser) syntaxError(err error) {
	// goccy/go-yaml's parser leaves aliases alone: find the unknown one.
	if m := unknownAnchor().FindStringSubmatch(err.Error()); m != nil {
		if line, col, ok := p.find("*" + m[1]); ok {
			p.errAt(line, col, "expected valid YAML: unknown anchor '"+m[1]+"' referenced (no &"+m[1]+" before it)")
			return
		}
	}
	line, msg := 1, err.Error()
	if m := yamlLine().FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	p.errs = append(p.errs, fmt.Errorf("%s:%d:1: expected valid YAML: %s", p.file, line, msg))
}

func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// fields is a checked YAML mapping.
type fields struct {
	keys, vals map[string]*yaml.Node
	order      []string
	unknown    bool // an unknown key was reported: say no more about what is missing
}

func (f *fields) val(k string) *yaml.Node {
	if v := f.vals[k]; v != nil {
		return deref(v)
	}
	return nil
}

// mapping checks that n is a mapping whose keys are among allowed, each at
// most once. It returns nil after reporting an error if n is no mapping.
func (p *fileParser) mapping(n *yaml.Node, what string, allowed ...string) *fields {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		p.errf(n, "expected %s (a mapping), got %s", what, kindName(n))
		return nil
	}
	f := &fields{keys: map[string]*yaml.Node{}, vals: map[string]*yaml.Node{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errf(k, "expected a key of %s, got %s", what, kindName(k))
			continue
		}
		if !contains(allowed, k.Value) {
			p.errf(k, "unknown key %q in %s: expected one of %s", k.Value, what, strings.Join(allowed, ", "))
			f.unknown = true
			continue
		}
		if first := f.keys[k.Value]; first != nil {
			p.errf(k, "key %q repeated (first at line %d)", k.Value, first.Line)
			continue
		}
		f.keys[k.Value], f.vals[k.Value] = k, v
		f.order = append(f.order, k.Value)
	}
	return f
}

func (p *fileParser) sequence(n *yaml.Node, what string) []*yaml.Node {
	n = deref(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errf(n, "expected %s, got %s", what, kindName(n))
		return nil
	}
	return n.Content
}

func (p *fileParser) scalar(n *yaml.Node, what string) (string, bool) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errf(n, "expected %s, got %s", what, kindName(n))
		return "", false
	}
	return n.Value, true
}

// scalars accepts one scalar or a list of them.
func (p *fileParser) scalars(n *yaml.Node, what string) []*yaml.Node {
	n = deref(n)
	if n.Kind == yaml.SequenceNode {
		if len(n.Content) == 0 {
			p.errf(n, "expected %s, got an empty list", what)
		}
		return n.Content
	}
	return []*yaml.Node{n}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var verbs = []string{"allow", "deny", "refuse", "unreachable", "timeout", "redirect"}

// verdictOptions are the keys that refine a verdict, and the actions each
// applies to.
var verdictOptions = map[string][]Action{
	"errno":  {Deny},
	"reason": {Unreachable},
	"after":  {Timeout, Refuse, Unreachable},
	"to":     {Redirect},
}

// verdict reads the verdict options in f for action a. at is the node to
// blame for a missing option.
func (p *fileParser) verdict(a Action, f *fields, at *yaml.Node) (Verdict, bool) {
	v, _ := parseVerdictArg(a, "")
	ok := true
	for _, k := range []string{"errno", "reason", "after", "to"} {
		n := f.val(k)
		if n == nil {
			continue
		}
		if !containsAction(verdictOptions[k], a) {
			p.errf(f.keys[k], "%s does not apply to %s", k, a)
			ok = false
			continue
		}
		s, good := p.scalar(n, k)
		if !good {
			ok = false
			continue
		}
		var err error
		switch k {
		case "after":
			v.After, err = parseDuration(s)
		default:
			var w Verdict
			w, err = parseVerdictArg(a, s)
			v.Reason, v.To = w.Reason, w.To
		}
		if err != nil {
			p.errf(n, "%v", err)
			ok = false
		}
	}
	if a == Redirect && f.val("to") == nil {
		p.errf(at, "redirect needs to: IP:PORT")
		ok = false
	}
	return v, ok
}

func containsAction(list []Action, a Action) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

func (p *fileParser) defaultVerdict(n *yaml.Node) Default {
	what := "self, allow, deny, refuse, unreachable or timeout"
	if n.Kind == yaml.ScalarNode {
		if n.Value == "self" {
			return DefaultSelf
		}
		a, ok := actionNames[n.Value]
		if !ok || a == Redirect {
			p.errf(n, "expected the default: %s, got %q", what, n.Value)
			return DefaultSelf
		}
		v, _ := parseVerdictArg(a, "")
		return Default{Verdict: v}
	}
	f := p.mapping(n, "the default", "verdict", "errno", "reason", "after")
	if f == nil {
		return DefaultSelf
	}
	vn := f.val("verdict")
	if vn == nil {
		p.errf(n, "expected verdict: %s", what)
		return DefaultSelf
	}
	s, _ := p.scalar(vn, "verdict")
	a, ok := actionNames[s]
	if s == "self" {
		if len(f.order) > 1 {
			p.errf(n, "self takes no options")
		}
		return DefaultSelf
	}
	if !ok || a == Redirect {
		p.errf(vn, "expected %s, got %q", what, s)
		return DefaultSelf
	}
	v, _ := p.verdict(a, f, vn)
	return Default{Verdict: v}
}

func (p *fileParser) rule(n *yaml.Node) (Rule, bool) {
	allowed := append(append([]string{}, verbs...), "errno", "reason", "after", "to", "family", "type", "dns", "faults")
	f := p.mapping(n, "a rule", allowed...)
	if f == nil {
		return Rule{}, false
	}
	var verb string
	for _, k := range f.order {
		if contains(verbs, k) {
			if verb != "" {
				p.errf(f.keys[k], "a rule has one verdict, and this one already has %s", verb)
				return Rule{}, false
			}
			verb = k
		}
	}
	if verb == "" {
		if f.unknown {
			return Rule{}, false
		}
		p.errf(deref(n), "expected a rule: one of %s, with its destination", strings.Join(verbs, ", "))
		return Rule{}, false
	}
	a := actionNames[verb]
	rl := Rule{Origin: p.pos(f.keys[verb])}
	ok := true
	var raw []string
	for _, dn := range p.scalars(f.val(verb), "a destination") {
		s, good := p.scalar(dn, "a destination")
		if !good {
			ok = false
			continue
		}
		d, err := parseDest(strings.TrimSpace(s), p.resolve)
		if err != nil {
			p.errf(dn, "%v", err)
			ok = false
			continue
		}
		raw = append(raw, s)
		rl.Dests = append(rl.Dests, d)
	}
	rl.Text = fmt.Sprintf("%s:%d: %s: %s", p.file, f.keys[verb].Line, verb, strings.Join(raw, ", "))
	var good bool
	if rl.Verdict, good = p.verdict(a, f, f.keys[verb]); !good {
		ok = false
	}
	// Only the verdicts a real Unix socket can produce apply to one. A
	// time equal to the default is what the normalized form writes out.
	def, _ := parseVerdictArg(a, "")
	explicit := rl.Verdict.After != def.After
	for i, dn := range p.scalars(f.val(verb), "a destination") {
		if ok && i < len(rl.Dests) {
			if err := UnixVerdictError(rl.Dests[i], a, explicit); err != nil {
				p.errf(dn, "%s: %v", rl.Dests[i], err)
				ok = false
			}
		}
	}
	if fn := f.val("family"); fn != nil {
		s, _ := p.scalar(fn, "a family")
		if fam, found := familyNames[s]; found {
			rl.Family = FamilySetOf(fam)
		} else if s != "" {
			p.errf(fn, "expected family inet, inet6, unix or other, got %q", s)
			ok = false
		}
	}
	if tn := f.val("type"); tn != nil {
		s, _ := p.scalar(tn, "a socket type")
		if t, found := typeNames[s]; found {
			rl.Type = TypeSetOf(t)
		} else if s != "" {
			p.errf(tn, "expected type stream, dgram, seqpacket, other, tcp or udp, got %q", s)
			ok = false
		}
	}
	if fn := f.val("faults"); fn != nil {
		var specs []string
		for _, n := range p.scalars(fn, "a fault") {
			if s, good := p.scalar(n, "a fault"); good {
				specs = append(specs, s)
			}
		}
		if a != Allow {
			p.errf(f.keys["faults"], "faults apply only to allow rules (they shape a connection that is made)")
			ok = false
		} else if fs, err := ParseFaults(strings.Join(specs, "+")); err != nil {
			p.errf(fn, "%v", err)
			ok = false
		} else {
			rl.Verdict.Faults = fs
		}
	}
	if dn := f.val("dns"); dn != nil {
		s, _ := p.scalar(dn, "a DNS answer")
		named := false
		for _, d := range rl.Dests {
			named = named || d.Host != ""
		}
		switch {
		case a != Deny || !named:
			p.errf(f.keys["dns"], "dns applies only to deny rules by host name (it says how their lookups are answered)")
			ok = false
		case s == "refused":
			rl.DNSRefused = true
		case s != "nxdomain":
			p.errf(dn, "expected dns: nxdomain or refused, got %q", s)
			ok = false
		}
	}
	if !ok {
		return Rule{}, false
	}
	if err := rl.validate(); err != nil {
		p.errf(f.keys[verb], "%v", err)
		return Rule{}, false
	}
	return rl, true
}

func (p *fileParser) network(n *yaml.Node) *Network {
	f := p.mapping(n, "the network", "interfaces", "routes", "hosts")
	if f == nil {
		return nil
	}
	net := &Network{}
	if v := f.val("interfaces"); v != nil {
		for _, in := range p.sequence(v, "a list of interfaces") {
			if ifc, ok := p.iface(in); ok {
				net.Interfaces = append(net.Interfaces, ifc)
			}
		}
	}
	if v := f.val("routes"); v != nil {
		for _, rn := range p.sequence(v, "a list of routes") {
			net.Routes = append(net.Routes, p.routes(rn)...)
		}
	}
	if v := f.val("hosts"); v != nil {
		for _, hn := range p.sequence(v, "a list of hosts") {
			if h, ok := p.host(hn); ok {
				net.Hosts = append(net.Hosts, h)
			}
		}
	}
	return net
}

func (p *fileParser) iface(n *yaml.Node) (Interface, bool) {
	f := p.mapping(n, "an interface", "name", "address")
	if f == nil {
		return Interface{}, false
	}
	ifc := Interface{Origin: p.pos(deref(n))}
	if v := f.val("name"); v != nil {
		ifc.Name, _ = p.scalar(v, "an interface name")
	} else {
		p.errf(deref(n), "expected name: of the interface")
	}
	v := f.val("address")
	if v == nil {
		p.errf(deref(n), "expected address: ADDR/BITS of the interface")
		return ifc, false
	}
	for _, an := range p.scalars(v, "an interface address") {
		s, ok := p.scalar(an, "an interface address ADDR/BITS")
		if !ok {
			continue
		}
		pf, err := netip.ParsePrefix(s)
		if err != nil || pf.Addr().Zone() != "" {
			p.errf(an, "expected ADDR/BITS, such as 10.50.0.2/24, got %q", s)
			continue
		}
		ifc.Addrs = append(ifc.Addrs, pf)
	}
	return ifc, len(ifc.Addrs) > 0
}

// routes reads one route; "to: default" gives one per IP version of via,
// or both without via.
func (p *fileParser) routes(n *yaml.Node) []Route {
	f := p.mapping(n, "a route", "to", "via")
	if f == nil {
		return nil
	}
	origin := p.pos(deref(n))
	var via netip.Addr
	if v := f.val("via"); v != nil {
		s, ok := p.scalar(v, "a gateway address")
		if !ok {
			return nil
		}
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			p.errf(v, "expected a gateway IP address, got %q", s)
			return nil
		}
		via = a.Unmap()
	}
	v := f.val("to")
	if v == nil {
		p.errf(deref(n), "expected to: default or ADDR/BITS")
		return nil
	}
	s, ok := p.scalar(v, "default or ADDR/BITS")
	if !ok {
		return nil
	}
	if s == "default" {
		var out []Route
		if !via.IsValid() || via.Is4() {
			out = append(out, Route{To: netip.MustParsePrefix("0.0.0.0/0"), Via: via, Origin: origin})
		}
		if !via.IsValid() || via.Is6() {
			out = append(out, Route{To: netip.MustParsePrefix("::/0"), Via: via, Origin: origin})
		}
		return out
	}
	pf, err := parsePrefix(s)
	if err != nil {
		p.errf(v, "expected default or ADDR/BITS: %v", err)
		return nil
	}
	return []Route{{To: pf, Via: via, Origin: origin}}
}

func (p *fileParser) host(n *yaml.Node) (Host, bool) {
	f := p.mapping(n, "a host", "address", "name", "services")
	if f == nil {
		return Host{}, false
	}
	h := Host{Origin: p.pos(deref(n))}
	if v := f.val("name"); v != nil {
		h.Name, _ = p.scalar(v, "a host name")
	}
	v := f.val("address")
	if v == nil {
		p.errf(deref(n), "expected address: of the host")
		return h, false
	}
	s, ok := p.scalar(v, "a host IP address")
	if !ok {
		return h, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		p.errf(v, "expected a host IP address, got %q", s)
		return h, false
	}
	h.Addr = a.Unmap()
	if sv := f.val("services"); sv != nil {
		for _, sn := range p.sequence(sv, "a list of services") {
			if s, ok := p.service(sn); ok {
				h.Services = append(h.Services, s)
			}
		}
	}
	return h, true
}

func (p *fileParser) service(n *yaml.Node) (Service, bool) {
	f := p.mapping(n, "a service", "port", "proto", "verdict", "errno", "reason", "after", "to")
	if f == nil {
		return Service{}, false
	}
	s := Service{Origin: p.pos(deref(n))}
	ok := true
	if v := f.val("port"); v == nil {
		p.errf(deref(n), "expected port: PORT or PORT-PORT")
		ok = false
	} else if str, good := p.scalar(v, "a port"); good {
		pr, err := parsePorts(str)
		if err != nil {
			p.errf(v, "%v", err)
			ok = false
		}
		s.Ports = pr
	}
	if v := f.val("proto"); v != nil {
		switch str, _ := p.scalar(v, "a protocol"); str {
		case "tcp":
			s.Types = TypeSetOf(TypeStream)
		case "udp":
			s.Types = TypeSetOf(TypeDgram)
		default:
			p.errf(v, "expected proto tcp or udp, got %q", str)
			ok = false
		}
	}
	vn := f.val("verdict")
	if vn == nil {
		p.errf(deref(n), "expected verdict: %s", strings.Join(verbs, ", "))
		return s, false
	}
	str, _ := p.scalar(vn, "a verdict")
	a, found := actionNames[str]
	if !found {
		p.errf(vn, "expected verdict %s, got %q", strings.Join(verbs, ", "), str)
		return s, false
	}
	v, good := p.verdict(a, f, vn)
	s.Verdict = v
	return s, ok && good
}
