package matrix

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"sandbox/netstack"
)

// Grace is the --grace of every run: after the SIGTERM of --run-timeout,
// PROGRAM has this long before the sandbox kills what remains.
const Grace = 2 * time.Second

// PolicyDests returns the destinations of a policy's allow rules, in order
// and once each: `rules: [{allow: DEST or [DEST, ...]}, ...]`. The other
// verdicts are not destinations PROGRAM reaches. `*` and Unix globs (a
// path with *, ? or [) are skipped: no fault can stand for every peer they
// match. The policy is only read here; `sandbox run` checks it.
func PolicyDests(data []byte) ([]string, error) {
	var doc struct {
		Rules []struct {
			Allow yaml.Node `yaml:"allow"`
		} `yaml:"rules"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	var out []string
	seen := map[string]bool{}
	add := func(n *yaml.Node) error {
		if n.Kind != yaml.ScalarNode {
			return fmt.Errorf("line %d: allow: want DEST or [DEST, ...]", n.Line)
		}
		d := strings.TrimSpace(n.Value)
		if d == "" || !Faultable(d) || seen[d] {
			return nil
		}
		seen[d] = true
		out = append(out, d)
		return nil
	}
	for _, r := range doc.Rules {
		switch r.Allow.Kind {
		case 0: // no allow key
		case yaml.SequenceNode:
			for _, n := range r.Allow.Content {
				if err := add(n); err != nil {
					return nil, err
				}
			}
		default:
			if err := add(&r.Allow); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// Faultable says whether a fault can be put on dest: not `*`, not a Unix
// glob.
func Faultable(dest string) bool {
	if dest == "*" {
		return false
	}
	if p, ok := strings.CutPrefix(dest, "unix:"); ok {
		return !strings.ContainsAny(p, "*?[")
	}
	return true
}

// Port returns dest's port ("" for none, or a range such as 8080-8090):
// [tcp:|udp:]ADDR[/PREFIX][:PORT], [IPV6]:PORT, NAME:PORT.
func Port(dest string) string {
	if strings.HasPrefix(dest, "unix:") {
		return ""
	}
	d := strings.TrimPrefix(strings.TrimPrefix(dest, "tcp:"), "udp:")
	if strings.HasPrefix(d, "[") {
		i := strings.Index(d, "]")
		if i < 0 || !strings.HasPrefix(d[i+1:], ":") {
			return ""
		}
		return d[i+2:]
	}
	if strings.Count(d, ":") != 1 {
		return "" // no port, or an IPv6 address without brackets
	}
	return d[strings.IndexByte(d, ':')+1:]
}

// IsDNS says whether dest is a resolver's: port 53 exactly.
func IsDNS(dest string) bool { return Port(dest) == "53" }

// Run is one planned run: `SANDBOX Args...`.
type Run struct {
	Dest  string // "" for the baseline
	Fault Fault  // zero for the baseline
	Args  []string
	// Skip says why the fault has no meaning on Dest (Inapplicable): the
	// run is skipped, not run.
	Skip string
}

// IsBaseline says whether r is the baseline.
func (r Run) IsBaseline() bool { return r.Dest == "" }

// Label names the run: "baseline", or "DEST × FAULT".
func (r Run) Label() string {
	if r.IsBaseline() {
		return "baseline"
	}
	return r.Dest + " × " + r.Fault.Name
}

// Options are what a plan is made from.
type Options struct {
	Program []string // PROGRAM [ARGS...]
	Policy  string   // --policy FILE; "" learns the baseline
	Faults  []Fault
	DNS     bool // fault port-53 destinations too
	// Uses are what the baseline reached (its --summary-json): they say
	// which protocols a DEST of both (no tcp: or udp:) stands for.
	Uses []Use
}

// Use is one destination the baseline reached, as its summary lists it:
// "tcp:10.0.0.1:80", with the name the program looked it up by.
type Use struct {
	Dst  string `json:"dst"`
	Name string `json:"name"`
}

// ReadUses reads the connects of a --summary-json file.
func ReadUses(data []byte) ([]Use, error) {
	var doc struct {
		Connects []Use `json:"connects"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	return doc.Connects, nil
}

// Inapplicable says why the live fault f has no meaning on dest ("" when
// it has one, and for a connect verdict): a part of it means nothing on
// the protocol dest names (reset or slice on udp:, loss on tcp: or a Unix
// socket), which `sandbox run` refuses; or, on a DEST of both protocols,
// nothing on the only protocol the baseline reached it by, which `sandbox
// run` would take and leave the program untouched (a cell that reads ok
// and proves nothing).
func Inapplicable(dest string, f Fault, uses []Use) string {
	if !f.IsLive() {
		return ""
	}
	d, err := netstack.ParseDest(dest, nil)
	if err != nil {
		return "" // sandbox run says what is wrong with it
	}
	fs, err := netstack.ParseFaults(f.Value)
	if err != nil {
		return ""
	}
	var types netstack.TypeSet
	if d.Kind == netstack.DestInet && d.Types == 0 {
		types = usedTypes(dest, uses)
	}
	if err := fs.CheckDest(d, types); err != nil {
		if types == 0 {
			return err.Error()
		}
		proto := "TCP"
		if types == netstack.TypeSetOf(netstack.TypeDgram) {
			proto = "UDP"
		}
		return fmt.Sprintf("%v (the baseline reached %s over %s only)", err, dest, proto)
	}
	return ""
}

// usedTypes is the socket type of what the baseline reached through dest,
// when that is one type only: TCP's or UDP's (0: both, or nothing).
func usedTypes(dest string, uses []Use) netstack.TypeSet {
	rl, err := netstack.ParseFlag("allow", dest, nil)
	if err != nil {
		return 0
	}
	var set netstack.TypeSet
	for _, u := range uses {
		proto, addr, _ := strings.Cut(u.Dst, ":")
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			continue
		}
		r := netstack.Request{Family: netstack.FamilyInet6, Addr: ap, Names: u.Name, Looked: u.Name != ""}
		if ap.Addr().Unmap().Is4() {
			r.Family = netstack.FamilyInet
		}
		switch proto {
		case "tcp":
			r.Type = netstack.TypeStream
		case "udp":
			r.Type = netstack.TypeDgram
		default:
			continue
		}
		if rl.Matches(r) {
			set |= netstack.TypeSetOf(r.Type)
		}
	}
	if set == netstack.TypeSetOf(netstack.TypeStream) || set == netstack.TypeSetOf(netstack.TypeDgram) {
		return set
	}
	return 0
}

// BaselineRun is the baseline: without a policy `learn`, writing the
// learned policy to learnOut; with one, `run --policy FILE`; either writes
// its summary to summaryOut (what it reached: ReadUses).
func BaselineRun(o Options, learnOut, summaryOut string) Run {
	var args []string
	if o.Policy == "" {
		args = []string{"learn", "--grace", Grace.String(), "--out", learnOut, "--summary-json", summaryOut}
	} else {
		args = []string{"run", "--grace", Grace.String(), "--policy", o.Policy, "--summary-json", summaryOut}
	}
	return Run{Args: append(append(args, "--"), o.Program...)}
}

// Plan is the fault runs, destination by destination, each with every
// fault in order.
type Plan struct {
	Runs []Run
	// SkippedDNS are the port-53 destinations left out (without DNS).
	SkippedDNS []string
}

// NewPlan plans one run per destination and fault: `run --grace 2s FLAG`
// then `--policy FILE` or `--allow-all`. Rule flags are checked first, in
// order: FLAG decides dest, and everything else is as in the baseline. A
// fault with no meaning on a destination's protocol is planned skipped
// (Run.Skip).
func NewPlan(dests []string, o Options) Plan {
	var p Plan
	for _, d := range dests {
		if IsDNS(d) && !o.DNS {
			p.SkippedDNS = append(p.SkippedDNS, d)
			continue
		}
		for _, f := range o.Faults {
			p.Runs = append(p.Runs, Run{Dest: d, Fault: f, Args: FaultArgs(d, f, o), Skip: Inapplicable(d, f, o.Uses)})
		}
	}
	return p
}

// FaultArgs is the argv (after SANDBOX) of one fault run.
func FaultArgs(dest string, f Fault, o Options) []string {
	args := append([]string{"run", "--grace", Grace.String()}, f.Flag(dest)...)
	if o.Policy != "" {
		args = append(args, "--policy", o.Policy)
	} else {
		args = append(args, "--allow-all")
	}
	return append(append(args, "--"), o.Program...)
}

// ProgramName is the base name of PROGRAM, the JUnit class name.
func ProgramName(program []string) string {
	if len(program) == 0 {
		return ""
	}
	return filepath.Base(program[0])
}
