package netstack

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"

	"go.yaml.in/yaml/v3"
)

// String prints the policy normalized, as YAML that ParsePolicy reads back
// to the same policy: defaults spelled out, hostnames replaced by the
// addresses they resolved to, flags written as rules, each rule commented
// with where it came from. It is what `sandbox policy check` shows.
func (p *Policy) String() string { return p.format(true) }

func (p *Policy) format(comments bool) string {
	root := &yaml.Node{Kind: yaml.MappingNode}
	if comments {
		root.HeadComment = "normalized from " + p.name
		if p.flags > 0 {
			root.HeadComment += fmt.Sprintf(" and %d flag(s)", p.flags)
		}
	}
	addKV(root, "default", defaultNode(p.def))
	if len(p.rules) > 0 {
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for i := range p.rules {
			rn := ruleNode(&p.rules[i])
			if comments {
				rn.Content[1].LineComment = ruleComment(&p.rules[i])
			}
			seq.Content = append(seq.Content, rn)
		}
		addKV(root, "rules", seq)
	}
	if p.network != nil {
		addKV(root, "network", networkNode(p.network))
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return fmt.Sprintf("# cannot print the policy: %v\n", err)
	}
	return b.String()
}

// ruleComment says where a rule came from, and which hostnames it
// resolved at load.
func ruleComment(rl *Rule) string {
	c := rl.Origin
	if c == "flag" || c == "" {
		c = rl.Text
	}
	for _, d := range rl.Dests {
		if d.Host != "" {
			c += "; " + d.Host + " resolved at load"
		}
	}
	return c
}

func scalarNode(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: s} }

func addKV(m *yaml.Node, k string, v *yaml.Node) {
	m.Content = append(m.Content, scalarNode(k), v)
}

// addVerdictOptions writes the options of v under the verb key.
func addVerdictOptions(m *yaml.Node, v Verdict) {
	switch v.Action {
	case Deny:
		addKV(m, "errno", scalarNode(reasonNames[v.Reason]))
	case Unreachable:
		addKV(m, "reason", scalarNode(reasonNames[v.Reason]))
	case Redirect:
		addKV(m, "to", scalarNode(redirectString(v.To)))
	}
	if v.After != 0 || v.Action == Timeout {
		addKV(m, "after", scalarNode(v.After.String()))
	}
	if v.Faults != nil {
		addKV(m, "faults", scalarNode(v.Faults.Text))
	}
}

func defaultNode(d Default) *yaml.Node {
	if d.Self {
		return scalarNode("self")
	}
	if d.Verdict.Action == Allow || d.Verdict.Action == Refuse && d.Verdict.After == 0 {
		return scalarNode(d.Verdict.Action.String())
	}
	m := &yaml.Node{Kind: yaml.MappingNode}
	addKV(m, "verdict", scalarNode(d.Verdict.Action.String()))
	addVerdictOptions(m, d.Verdict)
	return m
}

func ruleNode(rl *Rule) *yaml.Node {
	var dests []*yaml.Node
	for _, d := range rl.Dests {
		for _, e := range d.Expand() {
			dests = append(dests, scalarNode(e.String()))
		}
	}
	var dn *yaml.Node
	if len(dests) == 1 {
		dn = dests[0]
	} else {
		dn = &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle, Content: dests}
	}
	m := &yaml.Node{Kind: yaml.MappingNode}
	addKV(m, rl.Verdict.Action.String(), dn)
	addVerdictOptions(m, rl.Verdict)
	if rl.Family != 0 {
		addKV(m, "family", scalarNode(familySetString(rl.Family)))
	}
	if rl.Type != 0 {
		addKV(m, "type", scalarNode(typeSetString(rl.Type)))
	}
	return m
}

func networkNode(n *Network) *yaml.Node {
	m := &yaml.Node{Kind: yaml.MappingNode}
	if len(n.Interfaces) > 0 {
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for _, ifc := range n.Interfaces {
			in := &yaml.Node{Kind: yaml.MappingNode}
			addKV(in, "name", scalarNode(ifc.Name))
			addrs := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
			for _, a := range ifc.Addrs {
				addrs.Content = append(addrs.Content, scalarNode(a.String()))
			}
			if len(addrs.Content) == 1 {
				addrs = addrs.Content[0]
			}
			addKV(in, "address", addrs)
			seq.Content = append(seq.Content, in)
		}
		addKV(m, "interfaces", seq)
	}
	if len(n.Routes) > 0 {
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for _, rt := range n.Routes {
			rn := &yaml.Node{Kind: yaml.MappingNode}
			addKV(rn, "to", scalarNode(rt.To.String()))
			if rt.Via.IsValid() {
				addKV(rn, "via", scalarNode(rt.Via.String()))
			}
			seq.Content = append(seq.Content, rn)
		}
		addKV(m, "routes", seq)
	}
	if len(n.Hosts) > 0 {
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for _, h := range n.Hosts {
			hn := &yaml.Node{Kind: yaml.MappingNode}
			addKV(hn, "address", scalarNode(h.Addr.String()))
			if h.Name != "" {
				addKV(hn, "name", scalarNode(h.Name))
			}
			if len(h.Services) > 0 {
				ss := &yaml.Node{Kind: yaml.SequenceNode}
				for _, s := range h.Services {
					sn := &yaml.Node{Kind: yaml.MappingNode}
					addKV(sn, "port", scalarNode(s.Ports.String()))
					switch s.Types {
					case TypeSetOf(TypeStream):
						addKV(sn, "proto", scalarNode("tcp"))
					case TypeSetOf(TypeDgram):
						addKV(sn, "proto", scalarNode("udp"))
					}
					addKV(sn, "verdict", scalarNode(s.Verdict.Action.String()))
					addVerdictOptions(sn, s.Verdict)
					ss.Content = append(ss.Content, sn)
				}
				addKV(hn, "services", ss)
			}
			seq.Content = append(seq.Content, hn)
		}
		addKV(m, "hosts", seq)
	}
	return m
}

// Explain says in words how the policy decides r: the verdict, the rule (or
// topology, or default) that decides it, and why. It is what `sandbox
// policy explain` shows.
func (p *Policy) Explain(r Request) string {
	r = normalize(r)
	var b strings.Builder
	d := p.Decide(r)
	fmt.Fprintf(&b, "request:  %s %s (%s %s socket)\n", opName(r.Op), r.Dest(), r.Family, r.Type)
	fmt.Fprintf(&b, "verdict:  %s\n", decisionStringFor(d, r.Family))
	if r.Family == FamilyUnspec {
		b.WriteString("because:  AF_UNSPEC dissolves an association; it reaches no destination\n")
		return b.String()
	}
	if i := p.lookupLinear(r); i != noRule {
		rl := &p.rules[i]
		fmt.Fprintf(&b, "by:       rule %d of %d, %s\n", i+1, len(p.rules), ruleWhere(rl))
		fmt.Fprintf(&b, "because:  %s\n", matchWhy(rl, r))
		if i > 0 {
			fmt.Fprintf(&b, "          the %d rule(s) before it did not match\n", i)
		}
		return b.String()
	}
	fmt.Fprintf(&b, "by:       no rule matched (%d checked)", len(p.rules))
	if p.network != nil {
		res := p.network.decide(r)
		if res.kind != topoPass {
			fmt.Fprintf(&b, "; the virtual network decides\nbecause:  %s\n", res.explain(r))
			return b.String()
		}
		b.WriteString("; the virtual network does not decide it")
	}
	fmt.Fprintf(&b, "; the default decides: %s\n", defaultString(p.def))
	fmt.Fprintf(&b, "because:  %s\n", p.defaultWhy(r, d))
	if d.Suggest != "" {
		fmt.Fprintf(&b, "to allow: %s\n", d.Suggest)
	}
	return b.String()
}

func opName(op Op) string {
	if op == OpSend {
		return "send to"
	}
	return "connect"
}

// ruleWhere names a rule for people: the flag as typed, or the file
// position (with column) and the rule as written.
func ruleWhere(rl *Rule) string {
	if rl.Origin == "flag" || rl.Origin == "" {
		return rl.Text
	}
	// A file rule's Text is "FILE:LINE: VERB: DEST"; Origin is FILE:LINE:COL.
	if _, written, ok := strings.Cut(strings.TrimPrefix(rl.Text, fileOf(rl.Origin)), ": "); ok {
		return rl.Origin + ": " + written
	}
	return rl.Origin + ": " + rl.Text
}

// fileOf strips ":LINE:COL" from a position.
func fileOf(pos string) string {
	for i := 0; i < 2; i++ {
		if j := strings.LastIndexByte(pos, ':'); j >= 0 {
			pos = pos[:j]
		}
	}
	return pos
}

func defaultString(d Default) string {
	if d.Self {
		return "self (the sandbox's own endpoints; " + d.Verdict.String() + " otherwise)"
	}
	return d.Verdict.String()
}

// decisionString renders a decision for people: "deny (EACCES)",
// "timeout after 2s", "redirect to 127.0.0.1:8443".
func decisionString(d Decision) string {
	s := d.Action.String()
	switch d.Action {
	case Deny:
		switch d.Reason {
		case ReasonPerm:
			s += " (EPERM)"
		case ReasonBroadcast:
			s += " (broadcast without SO_BROADCAST: EACCES)"
		default:
			s += " (EACCES)"
		}
	case Unreachable:
		if d.Reason == ReasonHost {
			s += " (EHOSTUNREACH)"
		} else {
			s += " (ENETUNREACH)"
		}
	case Refuse:
		s += " (ECONNREFUSED)"
	case Timeout:
		s += " (ETIMEDOUT after " + d.Timeout.String() + ")"
	case Redirect:
		s += " to " + d.Redirect.String()
	}
	if d.Delay > 0 {
		s += " after " + d.Delay.String()
	}
	return s
}

// decisionStringFor is decisionString for a socket of family f: on a Unix
// socket, verdicts act as their Unix twins (see UnixVerdictError).
func decisionStringFor(d Decision, f Family) string {
	if f != FamilyUnix {
		return decisionString(d)
	}
	switch d.Action {
	case Unreachable:
		return "unreachable, which a Unix socket shows as a socket file nobody listens on (ECONNREFUSED)"
	case Timeout:
		return "timeout, which a Unix socket shows as a listener whose backlog is full (waits; EAGAIN when non-blocking or after SO_SNDTIMEO)"
	case Refuse:
		return "refuse (ECONNREFUSED)"
	}
	return decisionString(d)
}

// matchWhy explains which of the rule's destinations matches r and how.
func matchWhy(rl *Rule, r Request) string {
	var parts []string
	for _, d := range rl.Dests {
		if !d.Matches(r) {
			continue
		}
		switch d.Kind {
		case DestAny:
			parts = append(parts, "* matches every destination")
		case DestUnixAny:
			parts = append(parts, "unix:* matches every Unix destination")
		case DestUnix:
			parts = append(parts, fmt.Sprintf("path %s matches the glob %s", r.Unix.Path, d.Glob))
		case DestAbstract:
			parts = append(parts, fmt.Sprintf("abstract name @%s matches the glob @%s", r.Unix.Name, d.Glob))
		case DestInet:
			a, _ := inetAddr(r)
			s := fmt.Sprintf("%s is in ", a)
			if len(d.Prefixes) == 0 {
				s = fmt.Sprintf("%s is any address", a)
			} else {
				s += matchingPrefix(d.Prefixes, a).String()
			}
			if d.Host != "" {
				s += " (" + d.Host + " at load)"
			}
			if d.Ports != AllPorts {
				s += fmt.Sprintf(", port %d is in %s", r.Addr.Port(), d.Ports)
			}
			if d.Types != 0 {
				s += fmt.Sprintf(", and the socket is %s", r.Type)
			}
			if r.Addr.Addr().Is4In6() {
				s += " (v4-mapped, so matched as IPv4)"
			}
			parts = append(parts, s)
		}
		break
	}
	if rl.Family != 0 {
		parts = append(parts, "the socket family is "+r.Family.String())
	}
	if rl.Type != 0 {
		parts = append(parts, "the socket type is "+r.Type.String())
	}
	return strings.Join(parts, "; ")
}

func matchingPrefix(ps []netip.Prefix, a netip.Addr) netip.Prefix {
	for _, p := range ps {
		if p.Contains(a) {
			return p
		}
	}
	return netip.Prefix{}
}

func (p *Policy) defaultWhy(r Request, d Decision) string {
	if !p.def.Self {
		return "the policy's default applies to whatever no rule matches"
	}
	if d.Action == Allow {
		if r.Family == FamilyUnix && !r.Unix.Abstract && r.Unix.Path == "" {
			return "an unnamed Unix address reaches no peer; the kernel answers"
		}
		return r.Dest() + " is an endpoint the sandboxed processes listen on or have bound"
	}
	if p.self.Load() == nil {
		return "the sandbox's own endpoints are not known here, so only rules allow anything"
	}
	return r.Dest() + " is not an endpoint the sandboxed processes listen on or have bound"
}

// ParseRequest builds a connect request from a concrete destination, for
// `sandbox policy explain`: tcp:IP:PORT, udp:IP:PORT, IP:PORT (TCP),
// [IPV6]:PORT, unix:/PATH or unix:@NAME. The socket family follows the
// address; a v4-mapped IPv6 address gives an inet6 socket.
func ParseRequest(dest string) (Request, error) {
	r := Request{Op: OpConnect, Type: TypeStream}
	s := strings.TrimSpace(dest)
	if rest, ok := strings.CutPrefix(s, "unix:"); ok {
		r.Family = FamilyUnix
		switch {
		case strings.HasPrefix(rest, "@"):
			r.Unix = UnixAddr{Abstract: true, Name: rest[1:]}
		case strings.HasPrefix(rest, "/"):
			r.Unix = UnixAddr{Path: rest}
		default:
			return Request{}, fmt.Errorf("request %q: expected unix:/ABSOLUTE-PATH or unix:@NAME", dest)
		}
		return r, nil
	}
	if rest, ok := strings.CutPrefix(s, "udp:"); ok {
		s, r.Type = rest, TypeDgram
	} else {
		s = strings.TrimPrefix(s, "tcp:")
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return Request{}, fmt.Errorf("request %q: expected [tcp:|udp:]IP:PORT, [IPV6]:PORT, unix:/PATH or unix:@NAME", dest)
	}
	r.Family, r.Addr = FamilyInet6, ap
	if ap.Addr().Is4() {
		r.Family = FamilyInet
	}
	return r, nil
}
