package netstack

import (
	"fmt"
	"net/netip"
	"sync/atomic"
)

// Default is what a policy decides when no rule matches and the virtual
// topology (if any) has no answer.
type Default struct {
	// Self allows the destinations the sandboxed process tree itself
	// listens on or has bound (see Endpoints); Verdict decides the rest.
	Self    bool
	Verdict Verdict
}

// DefaultSelf is the default of a sandbox run with no policy and no flags.
var DefaultSelf = Default{Self: true, Verdict: verdictDeny}

// Policy is a compiled, immutable policy: rules from flags, then rules from
// a file, then the virtual topology, then the default. It implements
// Decider and is safe for concurrent use.
type Policy struct {
	name    string
	def     Default
	rules   []Rule
	network *Network
	flags   int // how many of the first rules came from flags

	v4, v6     trie
	unixRules  []int32 // rules that can match a Unix destination, in order
	otherRules []int32 // rules that can match any other request ("*" rules)
	nameRules  []int32 // rules with a DEST by name, in order

	self atomic.Pointer[Endpoints]

	// memo holds the last lookups of inet requests (see decideInet).
	memo [memoSlots]atomic.Pointer[inetMemo]
}

// inetMemo is one remembered rule lookup: what it depends on (the
// unmapped, zoneless address, the port and the class) and its result, with
// the decision of the rule found. The tries and rules never change once
// compiled, so the same inputs find the same rule and the same decision.
type inetMemo struct {
	addr  netip.Addr
	port  uint16
	class class
	rule  int32 // noRule: none matched (the fallback is decided afresh)
	dec   Decision
}

const memoSlots = 4 // a few destinations in turn; a miss costs one allocation

var _ Decider = (*Policy)(nil)

// NewPolicy compiles a policy. name says where it came from, for messages;
// network may be nil.
func NewPolicy(name string, def Default, rules []Rule, network *Network) (*Policy, error) {
	if def.Verdict.Action == Redirect {
		return nil, fmt.Errorf("%s: redirect cannot be the default: it applies only to IP destinations", name)
	}
	for i := range rules {
		if err := rules[i].validate(); err != nil {
			where := rules[i].Origin
			if where == "flag" {
				where = rules[i].Text
			}
			return nil, errAt(where, fmt.Sprintf("%s: rule %d", name, i+1), "%v", err)
		}
	}
	if network != nil {
		n := *network // compile fills in tables: keep the caller's (and other policies') copy untouched
		if err := n.compile(); err != nil {
			return nil, err
		}
		network = &n
	}
	p := &Policy{name: name, def: def, rules: append([]Rule(nil), rules...), network: network}
	v4, v6 := newTrieBuilder(32), newTrieBuilder(128)
	for i := range p.rules {
		rl, idx := &p.rules[i], int32(i)
		unix, other := false, false
		for _, d := range rl.Dests {
			switch d.Kind {
			case DestAny:
				m := classMask(rl, d)
				v4.add(allIPv4, entry{idx, AllPorts, m})
				v6.add(allIPv6, entry{idx, AllPorts, m})
				unix, other = true, true
			case DestInet:
				e := entry{idx, d.Ports, classMask(rl, d)}
				if d.Host != "" && (len(p.nameRules) == 0 || p.nameRules[len(p.nameRules)-1] != idx) {
					p.nameRules = append(p.nameRules, idx)
				}
				if len(d.Prefixes) == 0 && d.Host == "" {
					v4.add(allIPv4, e)
					v6.add(allIPv6, e)
				}
				for _, pf := range d.Prefixes {
					if pf.Addr().Is4() {
						v4.add(pf, e)
					} else {
						v6.add(pf, e)
					}
				}
			default:
				unix = true
			}
		}
		if unix {
			p.unixRules = append(p.unixRules, idx)
		}
		if other {
			p.otherRules = append(p.otherRules, idx)
		}
	}
	p.v4, p.v6 = v4.build(), v6.build()
	return p, nil
}

// SelfPolicy is the policy of a run with no policy file and no flags: only
// the tree's own endpoints are reachable.
func SelfPolicy() *Policy {
	p, _ := NewPolicy("default policy", DefaultSelf, nil, nil)
	return p
}

// WithFlags returns a policy whose rules are flags (checked first, in
// order) followed by p's rules, earlier flags included; p is unchanged and
// the new policy shares its Endpoints.
func (p *Policy) WithFlags(flags []Rule) (*Policy, error) {
	rules := append(append([]Rule(nil), flags...), p.rules...)
	q, err := NewPolicy(p.name, p.def, rules, p.network)
	if err != nil {
		return nil, err
	}
	q.flags = p.flags + len(flags)
	q.self.Store(p.self.Load())
	return q, nil
}

// WithDefault returns p with another default (sandbox learn allows what no
// rule decides, and records it); p is unchanged.
func (p *Policy) WithDefault(def Default) (*Policy, error) {
	q, err := NewPolicy(p.name, def, p.rules, p.network)
	if err != nil {
		return nil, err
	}
	q.flags = p.flags
	q.self.Store(p.self.Load())
	return q, nil
}

// DefaultLearn is sandbox learn's default: everything allowed, the tree's
// own sockets told apart.
var DefaultLearn = Default{Self: true, Verdict: verdictAllow}

// UseEndpoints gives the "self" default the registry of the tree's own
// endpoints. Without one, the self default allows nothing.
func (p *Policy) UseEndpoints(e *Endpoints) { p.self.Store(e) }

// Rules returns the rules in the order they are checked. The slice is the
// policy's own: do not modify it.
func (p *Policy) Rules() []Rule { return p.rules }

// Default returns the policy's default.
func (p *Policy) Default() Default { return p.def }

// Network returns the virtual topology, or nil.
func (p *Policy) Network() *Network { return p.network }

// JudgesUnixNames reports whether some rule can match a Unix destination:
// only then can a Unix request's Bound name change a decision, and is the
// sentry's lookup of it worth its cost.
func (p *Policy) JudgesUnixNames() bool { return len(p.unixRules) > 0 }

// Decide implements Decider.
//
// A Unix path whose socket was bound under another absolute name (a bind
// mount or hard link over an allowed path) is allowed only if both names
// are: the first name's verdict unless it allows, else the bound name's.
func (p *Policy) Decide(r Request) Decision {
	if (r.Family == FamilyInet || r.Family == FamilyInet6) && r.Addr.IsValid() {
		return p.decideInet(&r)
	}
	d := p.decide(r)
	if r.Family == FamilyUnix && !r.Unix.Abstract && r.Unix.Bound != "" && r.Unix.Bound != r.Unix.Path && d.Action == Allow {
		b := r
		b.Unix.Path, b.Unix.Bound = r.Unix.Bound, ""
		if db := p.decide(b); db.Action != Allow {
			return db
		}
	}
	return d
}

func (p *Policy) decide(r Request) Decision {
	r = normalize(r)
	if r.Family == FamilyUnspec {
		if r.Addr.IsValid() || r.Unix != (UnixAddr{}) {
			// A disconnect names nothing; one that does is not a disconnect.
			return Decision{Action: Deny, Rule: "AF_UNSPEC with an address"}
		}
		return Decision{Action: Allow, Rule: "disconnect (AF_UNSPEC)"}
	}
	if i := p.lookup(r); i != noRule {
		return p.rules[i].Verdict.decision(r, p.rules[i].Text)
	}
	return p.fallback(r)
}

// decideInet is decide for an inet request with an address, the hot path:
// the same lookup (normalize changes only the type here: the family is
// inet's), without copying the request at each step.
func (p *Policy) decideInet(r *Request) Decision {
	typ := r.Type
	if typ > TypeSeqpacket {
		typ = TypeOther
	}
	c := class(typ&3) << 1
	if r.Family == FamilyInet6 {
		c |= 1
	}
	a := r.Addr.Addr().Unmap().WithZone("") // inetAddr
	port := r.Addr.Port()
	slot := &p.memo[(uint(port)^uint(a.As16()[15]))%memoSlots]
	m := slot.Load()
	if m == nil || m.addr != a || m.port != port || m.class != c {
		// A page or two of trie and rules, cold after the kernel's work
		// between two calls, against one remembered entry.
		t := &p.v6
		if a.Is4() {
			t = &p.v4
		}
		m = &inetMemo{addr: a, port: port, class: c, rule: t.lookup(a, port, c)}
		if m.rule != noRule {
			rl := &p.rules[m.rule]
			m.dec = rl.Verdict.decisionPort(port, rl.Text)
		}
		slot.Store(m)
	}
	if len(p.nameRules) > 0 && r.Names != "" {
		// The names the program's lookups gave the address decide the
		// rules by name (Dest.Matches): one before the rule the addresses
		// found may match, and that rule, if it is by name, may not.
		nr := normalize(*r)
		for _, i := range p.nameRules {
			if m.rule != noRule && i > m.rule {
				break
			}
			rl := &p.rules[i]
			if rl.Matches(nr) {
				return rl.Verdict.decisionPort(port, rl.Text)
			}
			if i == m.rule { // found through load-time addresses that the names overrule
				for j := int(i) + 1; j < len(p.rules); j++ {
					if rl := &p.rules[j]; rl.Matches(nr) {
						return rl.Verdict.decisionPort(port, rl.Text)
					}
				}
				return p.fallback(nr)
			}
		}
	}
	if m.rule != noRule {
		return m.dec
	}
	return p.fallback(normalize(*r))
}

// HasNameRules reports whether a rule names a host: only then do the
// program's lookups change decisions.
func (p *Policy) HasNameRules() bool { return len(p.nameRules) > 0 }

// DeniesLookups reports whether some lookup can be denied (DecideQuery).
func (p *Policy) DeniesLookups() bool {
	for _, i := range p.nameRules {
		rl := &p.rules[i]
		for _, d := range rl.Dests {
			if d.Host != "" && lookupDenier(rl, d) {
				return true
			}
		}
	}
	return false
}

// lookupDenier reports whether rule rl, through its DEST d by name, denies
// the lookup of the names d matches: a deny on every port and type.
func lookupDenier(rl *Rule, d Dest) bool {
	return rl.Verdict.Action == Deny && d.Ports == AllPorts && d.Types == 0 && rl.Type == 0 &&
		(rl.Family == 0 || rl.Family&(FamilySetOf(FamilyInet)|FamilySetOf(FamilyInet6)) == FamilySetOf(FamilyInet)|FamilySetOf(FamilyInet6))
}

// QueryVerdict is what a policy says of a DNS lookup of a name.
type QueryVerdict struct {
	// Deny: the lookup is answered NXDOMAIN (REFUSED with Refused) by the
	// sentry, without asking the resolver.
	Deny    bool
	Refused bool
	Rule    string
}

// DecideQuery decides a lookup of name. The first rule that names it
// decides: a deny of the name on every port and type (deny: bad.example,
// deny: "*.ads.example") denies the lookup itself, as a DNS firewall
// would, so that the program fails fast with "could not resolve"; any
// other rule leaves the lookup to the resolver, and its addresses to the
// connect's own decision.
func (p *Policy) DecideQuery(name string) QueryVerdict {
	name = NameOf(name)
	for _, i := range p.nameRules {
		rl := &p.rules[i]
		for _, d := range rl.Dests {
			if d.Host == "" || !MatchName(d.Host, name) {
				continue
			}
			if lookupDenier(rl, d) {
				return QueryVerdict{Deny: true, Refused: rl.DNSRefused, Rule: rl.Text}
			}
			return QueryVerdict{}
		}
	}
	return QueryVerdict{}
}

// lookup returns the index of the first rule matching r, or noRule.
func (p *Policy) lookup(r Request) int32 {
	if a, ok := inetAddr(r); ok {
		t := &p.v6
		if a.Is4() {
			t = &p.v4
		}
		return t.lookup(a, r.Addr.Port(), classOf(r))
	}
	list := p.otherRules
	if r.Family == FamilyUnix {
		list = p.unixRules
	}
	for _, i := range list {
		if p.rules[i].Matches(r) {
			return i
		}
	}
	return noRule
}

// lookupLinear is the reference: the first matching rule by a plain scan.
func (p *Policy) lookupLinear(r Request) int32 {
	r = normalize(r)
	for i := range p.rules {
		if p.rules[i].Matches(r) {
			return int32(i)
		}
	}
	return noRule
}

// fallback decides a request that no rule matched: topology, then default.
func (p *Policy) fallback(r Request) Decision {
	if p.network != nil {
		if res := p.network.decide(r); res.kind != topoPass {
			return res.decision(r)
		}
	}
	if p.def.Self {
		if r.Family == FamilyUnix && !r.Unix.Abstract && r.Unix.Path == "" {
			return Decision{Action: Allow} // unnamed: no peer to reach; the kernel answers
		}
		if e := p.self.Load(); e != nil && e.Contains(r) {
			return Decision{Action: Allow, Self: true}
		}
	}
	d := p.def.Verdict.decision(r, "")
	if p.def.Self && d.Action == Deny {
		d.Suggest = Suggest(r) // an explicit default is intended; self's denials are what users trip on
	}
	return d
}

// errAt formats an error that happened at origin ("file:line:col"), or at
// fallback when the origin is unknown (a rule built by hand).
func errAt(origin, fallback, format string, args ...any) error {
	if origin == "" {
		origin = fallback
	}
	return fmt.Errorf("%s: %s", origin, fmt.Sprintf(format, args...))
}

// normalize maps values outside the enums to "other", so that no table
// index can overflow.
func normalize(r Request) Request {
	if r.Family > FamilyUnspec {
		r.Family = FamilyOther
	}
	if r.Type > TypeSeqpacket {
		r.Type = TypeOther
	}
	return r
}
