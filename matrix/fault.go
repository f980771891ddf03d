// Package matrix plans the runs of `sandbox matrix`, reads their outcomes
// and writes the report: one baseline run of PROGRAM, then one run per
// destination and fault, each under `sandbox run` with one rule flag that
// makes that destination fail that way. It only plans, reads and writes:
// cmd/sandbox runs the processes.
package matrix

import (
	"fmt"
	"slices"
	"strings"

	"sandbox/netstack"
)

// DefaultFaults is the fault list without --faults.
const DefaultFaults = "refuse,timeout:5s,unreachable,reset:0,blackhole,latency:2s"

// Kind is how a fault reaches the sandbox: a connect verdict (its own rule
// flag) or a fault on a live connection (--fault).
type Kind int

const (
	Refuse      Kind = iota // --refuse DEST
	Timeout                 // --timeout DEST[=DURATION]
	Unreachable             // --unreachable DEST[=net|host]
	Deny                    // --deny DEST[=EACCES|EPERM]
	Live                    // --fault DEST=FAULT
)

// Fault is one cell of --faults.
type Fault struct {
	Spec  string // as given: "timeout=5s", "reset-after-0"
	Name  string // canonical, as reported: "timeout:5s", "reset:0"
	Kind  Kind
	Value string // the verdict's option (timeout's duration, ...), or the live fault
}

// Flag is the rule flag that applies f to dest.
func (f Fault) Flag(dest string) []string {
	opt := func(name string) []string {
		if f.Value == "" {
			return []string{name, dest}
		}
		return []string{name, dest + "=" + f.Value}
	}
	switch f.Kind {
	case Refuse:
		return opt("--refuse")
	case Timeout:
		return opt("--timeout")
	case Unreachable:
		return opt("--unreachable")
	case Deny:
		return opt("--deny")
	}
	return []string{"--fault", dest + "=" + f.Value}
}

// IsLive says whether f acts on a connection once it is established.
func (f Fault) IsLive() bool { return f.Kind == Live }

// ParseFaults parses a comma-separated fault list. Connect verdicts are
// checked here; live-connection faults have their aliases rewritten and
// their names checked: `sandbox run` is the judge of their values.
func ParseFaults(list string) ([]Fault, error) {
	var out []Fault
	seen := map[string]bool{}
	for _, cell := range strings.Split(list, ",") {
		cell = strings.TrimSpace(cell)
		if cell == "" {
			return nil, fmt.Errorf("--faults %q: an empty fault; want a comma-separated list such as %s", list, DefaultFaults)
		}
		f, err := ParseFault(cell)
		if err != nil {
			return nil, err
		}
		if seen[f.Name] {
			continue
		}
		seen[f.Name] = true
		out = append(out, f)
	}
	return out, nil
}

// ParseFault parses one cell of --faults: refuse, timeout[:DURATION],
// unreachable[:net|host], deny[:EACCES|EPERM] (each also with = for :), or
// a live-connection fault FAULT[+FAULT...], FAULT := NAME[:VALUE][@up|@down].
func ParseFault(s string) (Fault, error) {
	name, value, hasValue := cutValue(s)
	f := Fault{Spec: s, Value: value}
	switch name {
	case "refuse":
		f.Kind = Refuse
		if hasValue {
			return Fault{}, fmt.Errorf("--faults %s: refuse takes no value (it answers ECONNREFUSED at once); want refuse", s)
		}
	case "timeout":
		f.Kind = Timeout
		if hasValue && value == "" {
			return Fault{}, fmt.Errorf("--faults %s: want timeout:DURATION, such as timeout:5s, or timeout alone (2m7s, as Linux)", s)
		}
	case "unreachable":
		f.Kind = Unreachable
		if hasValue && value != "net" && value != "host" {
			return Fault{}, fmt.Errorf("--faults %s: want unreachable, unreachable:net or unreachable:host", s)
		}
	case "deny":
		f.Kind = Deny
		if hasValue && value != "EACCES" && value != "EPERM" {
			return Fault{}, fmt.Errorf("--faults %s: want deny, deny:EACCES or deny:EPERM", s)
		}
	default:
		live, err := normalizeLive(s)
		if err != nil {
			return Fault{}, err
		}
		return Fault{Spec: s, Name: live, Kind: Live, Value: live}, nil
	}
	f.Name = name
	if f.Value != "" {
		f.Name += ":" + f.Value
	}
	return f, nil
}

// cutValue splits NAME:VALUE or NAME=VALUE at the first separator.
func cutValue(s string) (name, value string, ok bool) {
	i := strings.IndexAny(s, ":=")
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+1:], true
}

// connectNames are the cells that are connect verdicts, each a cell of
// its own.
var connectNames = []string{"refuse", "timeout", "unreachable", "deny"}

// normalizeLive rewrites the aliases of a live-connection fault, part by
// part: reset-after-N is reset:N, NAME=VALUE is NAME:VALUE. Each part must
// name a fault of netstack.FaultKinds.
func normalizeLive(s string) (string, error) {
	parts := strings.Split(s, "+")
	for i, p := range parts {
		if p == "" {
			return "", fmt.Errorf("--faults %s: an empty part between +; want FAULT+FAULT, such as latency:200ms+loss:0.1", s)
		}
		body, dir := p, ""
		if j := strings.LastIndexByte(p, '@'); j >= 0 {
			body, dir = p[:j], p[j:]
		}
		if n, ok := strings.CutPrefix(body, "reset-after-"); ok {
			body = "reset:" + n
		} else if j := strings.IndexByte(body, '='); j >= 0 && !strings.Contains(body[:j], ":") {
			body = body[:j] + ":" + body[j+1:]
		}
		parts[i] = body + dir
		name, _, _ := strings.Cut(body, ":")
		switch {
		case slices.Contains(netstack.FaultKinds, name):
		case slices.Contains(connectNames, name) && len(parts) > 1:
			return "", fmt.Errorf("--faults %s: %s is a connect verdict, not a fault on a live connection: give it as a cell of its own (--faults %s,...)", s, name, name)
		default:
			return "", fmt.Errorf("--faults %s: unknown fault %s (known: %s, %s)", s, name, strings.Join(connectNames, ", "), strings.Join(netstack.FaultKinds, ", "))
		}
	}
	return strings.Join(parts, "+"), nil
}
