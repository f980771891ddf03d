package netstack

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// DefaultTimeout is how long a timeout verdict waits before ETIMEDOUT when
// the policy gives no duration. It is what Linux takes to give up on a
// silent peer with the default net.ipv4.tcp_syn_retries=6: SYNs at 0, 1, 3,
// 7, 15, 31 and 63 s, then 64 s more. A program with its own connect
// timeout gives up first, exactly as it would against a real silent host.
const DefaultTimeout = 127 * time.Second

// DefaultARPDelay is how long an on-link address that nobody holds takes to
// fail with EHOSTUNREACH on Linux: 3 unanswered ARP or neighbour
// solicitations (ucast/mcast_solicit) one second apart (retrans_time_ms).
const DefaultARPDelay = 3 * time.Second

// Verdict is what a rule, a service or the default decides.
type Verdict struct {
	Action Action
	// Reason: ReasonAccess or ReasonPerm for Deny, ReasonNet or ReasonHost
	// for Unreachable, ReasonNone otherwise.
	Reason Reason
	// After is the timeout of a Timeout, and the delay before a Refuse or an
	// Unreachable shows (zero: at once).
	After time.Duration
	// To is a Redirect's target. Port 0 keeps the port the program asked for.
	To netip.AddrPort
	// Faults, for an Allow, are what the live connection suffers (--fault).
	Faults *Faults
}

// Verdicts as written in policies and flags.
var (
	verdictAllow = Verdict{Action: Allow}
	verdictDeny  = Verdict{Action: Deny, Reason: ReasonAccess}
)

// decision turns the verdict into a Decision for r.
func (v Verdict) decision(r Request, rule string) Decision {
	return v.decisionPort(r.Addr.Port(), rule)
}

// decisionPort is decision for a request to port: the only field of the
// request a verdict reads (a redirect without a port keeps it).
func (v Verdict) decisionPort(port uint16, rule string) Decision {
	d := Decision{Action: v.Action, Reason: v.Reason, Rule: rule, Faults: v.Faults}
	switch v.Action {
	case Timeout:
		d.Timeout = v.After
	case Refuse, Unreachable:
		d.Delay = v.After
	case Redirect:
		d.Redirect = v.To
		if v.To.Port() == 0 {
			d.Redirect = netip.AddrPortFrom(v.To.Addr(), port)
		}
	}
	return d
}

// String renders the verdict the way flags spell it: "deny EPERM",
// "timeout 2s", "redirect 127.0.0.1:8443".
func (v Verdict) String() string {
	if arg := v.arg(); arg != "" {
		return v.Action.String() + " " + arg
	}
	return v.Action.String()
}

// arg is the verdict's parameter in flag syntax, "" for none.
func (v Verdict) arg() string {
	switch v.Action {
	case Deny:
		return reasonNames[v.Reason]
	case Unreachable:
		return reasonNames[v.Reason]
	case Timeout:
		return v.After.String()
	case Redirect:
		return redirectString(v.To)
	}
	return ""
}

func redirectString(to netip.AddrPort) string {
	if to.Port() == 0 {
		return to.Addr().String()
	}
	return to.String()
}

var reasonNames = map[Reason]string{
	ReasonAccess: "EACCES", ReasonPerm: "EPERM", ReasonNet: "net", ReasonHost: "host",
}

// parseVerdictArg fills in the parameter of a verdict from its text: an
// errno name for deny, net|host for unreachable, a duration for timeout, an
// address for redirect. "" gives the default.
func parseVerdictArg(a Action, arg string) (Verdict, error) {
	v := Verdict{Action: a}
	switch a {
	case Allow, Refuse:
		if arg != "" {
			return v, fmt.Errorf("%s takes no parameter, got %q", a, arg)
		}
	case Deny:
		switch arg {
		case "", "EACCES":
			v.Reason = ReasonAccess
		case "EPERM":
			v.Reason = ReasonPerm
		default:
			return v, fmt.Errorf("expected EACCES or EPERM, got %q", arg)
		}
	case Unreachable:
		switch arg {
		case "", "net":
			v.Reason = ReasonNet
		case "host":
			v.Reason = ReasonHost
		default:
			return v, fmt.Errorf("expected net or host, got %q", arg)
		}
	case Timeout:
		v.After = DefaultTimeout
		if arg != "" {
			d, err := parseDuration(arg)
			if err != nil {
				return v, err
			}
			v.After = d
		}
	case Redirect:
		to, err := parseRedirect(arg)
		if err != nil {
			return v, err
		}
		v.To = to
	}
	return v, nil
}

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("expected a duration such as 2s or 500ms, got %q", s)
	}
	return d, nil
}

// parseRedirect parses a redirect target: IP:PORT, [IPV6]:PORT, or an IP
// (IPV6 or [IPV6]) alone to keep the requested port.
func parseRedirect(s string) (netip.AddrPort, error) {
	bad := fmt.Errorf("expected a redirect target IP:PORT, [IPV6]:PORT or IP, got %q", s)
	var a netip.Addr
	var port uint16
	if ap, err := netip.ParseAddrPort(s); err == nil {
		a, port = ap.Addr(), ap.Port()
	} else if a, err = netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err != nil {
		return netip.AddrPort{}, bad
	}
	if a.Zone() != "" || a.IsUnspecified() || a.IsMulticast() {
		return netip.AddrPort{}, bad
	}
	return netip.AddrPortFrom(a.Unmap(), port), nil
}

// actionNames are the verbs of rules, flags and services.
var actionNames = map[string]Action{
	"allow": Allow, "deny": Deny, "refuse": Refuse,
	"unreachable": Unreachable, "timeout": Timeout, "redirect": Redirect,
}

// Rule is one first-match-wins rule.
type Rule struct {
	// Dests: the rule matches when any of them matches.
	Dests []Dest
	// Family and Type narrow the rule to sockets of these families and
	// types (zero: any).
	Family  FamilySet
	Type    TypeSet
	Verdict Verdict
	// Origin says where the rule was written: "policy.yaml:4:5" or "flag 2".
	Origin string
	// Text is the rule as the user wrote it, for Decision.Rule and logs.
	Text string
	// DNSRefused: a lookup this rule denies (see Policy.DecideQuery) is
	// answered REFUSED instead of NXDOMAIN.
	DNSRefused bool
}

// Matches reports whether r matches the rule: the reference semantics that
// the fast lookup must reproduce.
func (rl *Rule) Matches(r Request) bool {
	if !rl.Family.Has(r.Family) || !rl.Type.Has(r.Type) {
		return false
	}
	strict := rl.Verdict.Action != Allow && rl.Verdict.Action != Redirect
	for _, d := range rl.Dests {
		if d.matches(r, strict) {
			return true
		}
	}
	return false
}

// validate checks what the parsers check, for rules built by hand.
func (rl *Rule) validate() error {
	if len(rl.Dests) == 0 {
		return fmt.Errorf("rule has no destination")
	}
	for _, d := range rl.Dests {
		if rl.Verdict.Faults != nil && d.Kind == DestAny {
			return fmt.Errorf("faults need a destination: an address, a name or a Unix socket, not %s", d)
		}
		if rl.Verdict.Action == Redirect && d.Kind != DestInet {
			return fmt.Errorf("redirect applies only to IP destinations (tcp:, udp: or an address), not %s", d)
		}
		if rl.Verdict.Action == Redirect && d.coversIPv4() && rl.Verdict.To.Addr().Is6() {
			return fmt.Errorf("%s includes IPv4 destinations, which IPv4 sockets cannot redirect to IPv6 %s", d, rl.Verdict.To.Addr())
		}
		if fam := destFamilies(d); rl.Family != 0 && fam != 0 && rl.Family&fam == 0 {
			return fmt.Errorf("family %s never matches %s", familySetString(rl.Family), d)
		}
		if rl.Type != 0 && d.Types != 0 && rl.Type&d.Types == 0 {
			return fmt.Errorf("type %s never matches %s", typeSetString(rl.Type), d)
		}
		if err := rl.Verdict.Faults.CheckDest(d, rl.Type); err != nil {
			return err
		}
	}
	return nil
}

// destFamilies is the set of socket families a Dest can match (0: all).
func destFamilies(d Dest) FamilySet {
	switch d.Kind {
	case DestInet:
		return FamilySetOf(FamilyInet) | FamilySetOf(FamilyInet6)
	case DestUnix, DestAbstract, DestUnixAny:
		return FamilySetOf(FamilyUnix)
	}
	return 0
}

// FlagSpec describes one rule flag, for the command line to register.
type FlagSpec struct {
	Name  string // without dashes
	Arg   string // "" for a boolean flag
	Usage string
}

// RuleFlags are the command-line flags that add rules. They are checked
// before the rules of a policy file, in the order given.
var RuleFlags = []FlagSpec{
	{"allow", "DEST", "allow connections to DEST"},
	{"deny", "DEST[=EACCES|EPERM]", "deny DEST locally, as a firewall would (default EACCES)"},
	{"refuse", "DEST", "answer DEST with ECONNREFUSED, as a closed port"},
	{"unreachable", "DEST[=net|host]", "answer DEST with ENETUNREACH (net, default) or EHOSTUNREACH (host)"},
	{"timeout", "DEST[=DURATION]", "let DEST never answer: ETIMEDOUT after DURATION (default 2m7s, as Linux)"},
	{"redirect", "DEST=IP:PORT", "connect to IP:PORT instead of DEST (IP alone keeps the port)"},
	{"fault", "DEST=FAULT[+FAULT...]", "allow DEST, with faults on the live connection: " + FaultNames},
	{"allow-all", "", "allow every destination not matched by an earlier flag"},
}

// ParseFlag builds the rule of one command-line flag: name is "allow",
// "deny", … or "allow-all" (leading dashes are ignored), value its argument.
// The parameter after the last '=' (deny, unreachable, timeout, redirect) is
// split off the DEST.
func ParseFlag(name, value string, resolve func(host string) ([]netip.Addr, error)) (Rule, error) {
	name = strings.TrimLeft(name, "-")
	text := "--" + name
	if value != "" {
		text += " " + value
	}
	fail := func(err error) (Rule, error) { return Rule{}, fmt.Errorf("%s: %v", text, err) }
	if name == "allow-all" {
		if value != "" && value != "true" {
			return fail(fmt.Errorf("takes no value"))
		}
		return Rule{Dests: []Dest{{Kind: DestAny}}, Verdict: verdictAllow, Origin: "flag", Text: "--allow-all"}, nil
	}
	if name == "fault" {
		i := strings.LastIndexByte(value, '=')
		if i < 0 {
			return fail(fmt.Errorf("expected DEST=FAULT[+FAULT...] (%s)", FaultNames))
		}
		f, err := ParseFaults(value[i+1:])
		if err != nil {
			return fail(err)
		}
		d, err := ParseDest(value[:i], resolve)
		if err != nil {
			return fail(err)
		}
		rl := Rule{Dests: []Dest{d}, Verdict: Verdict{Action: Allow, Faults: f}, Origin: "flag", Text: text}
		if err := rl.validate(); err != nil {
			return fail(err)
		}
		return rl, nil
	}
	a, ok := actionNames[name]
	if !ok {
		return fail(fmt.Errorf("unknown rule flag: expected --allow, --deny, --refuse, --unreachable, --timeout, --redirect, --fault or --allow-all"))
	}
	dest, arg := value, ""
	if a != Allow && a != Refuse {
		if i := strings.LastIndexByte(value, '='); i >= 0 {
			dest, arg = value[:i], value[i+1:]
		}
	}
	if a == Redirect && arg == "" {
		return fail(fmt.Errorf("expected DEST=IP:PORT"))
	}
	v, err := parseVerdictArg(a, arg)
	if err != nil {
		return fail(err)
	}
	d, err := ParseDest(dest, resolve)
	if err != nil {
		return fail(err)
	}
	rl := Rule{Dests: []Dest{d}, Verdict: v, Origin: "flag", Text: text}
	if err := rl.validate(); err != nil {
		return fail(err)
	}
	return rl, nil
}

var familyNames = map[string]Family{"inet": FamilyInet, "inet6": FamilyInet6, "unix": FamilyUnix, "other": FamilyOther}

var typeNames = map[string]SockType{
	"stream": TypeStream, "tcp": TypeStream, "dgram": TypeDgram, "udp": TypeDgram,
	"seqpacket": TypeSeqpacket, "other": TypeOther,
}

func familySetString(s FamilySet) string {
	var parts []string
	for _, f := range []Family{FamilyInet, FamilyInet6, FamilyUnix, FamilyOther} {
		if s&FamilySetOf(f) != 0 {
			parts = append(parts, f.String())
		}
	}
	return strings.Join(parts, ",")
}

func typeSetString(s TypeSet) string {
	var parts []string
	for _, t := range []SockType{TypeStream, TypeDgram, TypeSeqpacket, TypeOther} {
		if s&TypeSetOf(t) != 0 {
			parts = append(parts, t.String())
		}
	}
	return strings.Join(parts, ",")
}
