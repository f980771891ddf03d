package netstack

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Faults are what an allowed connection suffers once it is up: the sentry
// connects the program to a relay that connects on to the real destination
// and shapes the bytes (sentry/relay). The connect itself is the real
// destination's to decide: a fault never changes what is connected to.
//
// Directions: Up is the program's bytes to the peer, Down the peer's to the
// program.
type Faults struct {
	// Toxicity is the probability that a connection suffers the faults at
	// all (1: every one). The others are relayed untouched, or not relayed.
	Toxicity float64
	// ConnectLatency delays the first bytes of the connection, once.
	ConnectLatency time.Duration
	// Latency and Jitter delay each chunk, per direction (Up, Down).
	Latency, Jitter [2]time.Duration
	// Bandwidth limits each direction to bytes per second (0: none); on
	// UDP the datagrams are paced.
	Bandwidth [2]int64
	// ResetAfter resets the connection (the program gets ECONNRESET, as
	// from an RST) once ResetBytes bytes have passed, counted both ways
	// (0: at the first data), or after ResetTime; -1 and 0: never.
	ResetBytes int64
	ResetTime  time.Duration
	// Blackhole stops delivering in a direction: the bytes are not read
	// any more, as if the network dropped them; down, the peer's end (its
	// FIN, its RST) does not reach the program either. On UDP each
	// datagram that way is dropped.
	Blackhole [2]bool
	// SlowClose delays the close of the program's side after the peer
	// closed.
	SlowClose time.Duration
	// Limit closes the connection (a FIN) once this many bytes came down
	// (-1: never).
	Limit int64
	// Slice cuts the down direction into pieces of this many bytes, each
	// SliceDelay apart (0: no slicing).
	Slice      int
	SliceDelay time.Duration
	// Loss and Duplicate are per datagram, both ways (UDP only).
	Loss, Duplicate float64
	// Text is the fault as written, for logs.
	Text string

	// parts are the faults as parsed, and views what of them applies to
	// streams and to UDP (For); empty for a Faults built by hand.
	parts []faultPart
	views [2]*Faults
}

// Directions of a connection.
const (
	Up   = 0
	Down = 1
)

// faultKind is one fault: the sockets it has a meaning on, and on the
// others why it has none and what to write instead.
type faultKind struct {
	name          string
	stream, dgram bool // TCP and Unix streams; UDP
	directional   bool // takes @up, @down or @both
	value         bool // takes :VALUE
	// Where it has no meaning: why, and what to use there instead.
	why, instead string
}

var faultKinds = []faultKind{
	{name: "reset", stream: true, value: true,
		why: "a datagram socket has no connection to reset", instead: "blackhole (every datagram dropped) or loss:P"},
	{name: "blackhole", stream: true, dgram: true, directional: true},
	{name: "latency", stream: true, dgram: true, directional: true, value: true},
	{name: "connect-latency", stream: true, value: true,
		why: "UDP has no handshake to delay", instead: "latency"},
	{name: "bandwidth", stream: true, dgram: true, directional: true, value: true},
	{name: "limit", stream: true, value: true,
		why: "UDP has no FIN to send after N bytes", instead: "blackhole@down or loss:P"},
	{name: "slice", stream: true, value: true,
		why: "a datagram is delivered whole or not at all", instead: "latency or bandwidth"},
	{name: "slow-close", stream: true, value: true,
		why: "UDP has no close to delay", instead: "latency"},
	{name: "loss", dgram: true, value: true,
		why: "a stream loses no byte (TCP resends what the network drops: its program sees a delay)", instead: "latency, blackhole or reset"},
	{name: "duplicate", dgram: true, value: true,
		why: "a stream delivers no byte twice (TCP discards a duplicate segment)", instead: "latency or slice"},
	{name: "toxicity", stream: true, dgram: true, value: true},
}

// FaultKinds are the names of the faults, in the order of the help.
var FaultKinds = func() []string {
	names := make([]string, len(faultKinds))
	for i, k := range faultKinds {
		names[i] = k.name
	}
	return names
}()

func kindOf(name string) *faultKind {
	for i := range faultKinds {
		if faultKinds[i].name == name {
			return &faultKinds[i]
		}
	}
	return nil
}

// connectVerdicts are the verdicts of a connect, which a --fault cannot
// give: each has its own rule flag.
var connectVerdicts = map[string]string{
	"allow":       "--allow DEST (a --fault allows its DEST already)",
	"deny":        "--deny DEST[=EACCES|EPERM]",
	"refuse":      "--refuse DEST",
	"unreachable": "--unreachable DEST[=net|host]",
	"timeout":     "--timeout DEST[=DURATION]",
	"redirect":    "--redirect DEST=IP:PORT",
}

// FaultNames documents the fault syntax, for help texts.
const FaultNames = "reset:N|DURATION, blackhole, latency:DURATION[~JITTER], connect-latency:DURATION, bandwidth:RATE, " +
	"limit:N, slice:N[~DELAY], slow-close:DURATION, loss:P, duplicate:P, toxicity:P; @up, @down or @both after a " +
	"directional one; several joined by +; reset, limit, slice, slow-close and connect-latency are TCP's and Unix " +
	"streams', loss and duplicate UDP's"

// ParseFaults parses FAULT[+FAULT...], each NAME[:VALUE][@up|@down|@both].
// Sizes take B, KB, MB (1000s) or KiB, MiB (1024s); RATE is a size per
// second; P is a probability from 0 to 1.
//
// Some faults have a meaning on one kind of socket only (reset on TCP,
// loss on UDP: see CheckDest); For is what applies to each.
func ParseFaults(s string) (*Faults, error) {
	f := &Faults{Toxicity: 1, ResetBytes: -1, Limit: -1, Text: s}
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("expected a fault: %s", FaultNames)
	}
	seen := map[string]bool{}
	for _, part := range strings.Split(s, "+") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("%s: an empty fault between +; expected FAULT+FAULT, such as latency:200ms+reset:1MB", s)
		}
		spec, dir, hasDir := strings.Cut(part, "@")
		name, val, hasVal := strings.Cut(spec, ":")
		kind := kindOf(name)
		if kind == nil {
			at := part + ": " // the part, when it is more than the name
			if part == name {
				at = ""
			}
			if flag, ok := connectVerdicts[name]; ok {
				return nil, fmt.Errorf("%s%s is a connect verdict, not a fault on a live connection: write %s", at, name, flag)
			}
			return nil, fmt.Errorf("%sunknown fault %s (known: %s)", at, name, strings.Join(FaultKinds, ", "))
		}
		dirs := []int{Down}
		switch {
		case !hasDir:
			if name == "blackhole" || name == "bandwidth" {
				dirs = []int{Up, Down}
			}
		case dir == "up":
			dirs = []int{Up}
		case dir == "down":
			dirs = []int{Down}
		case dir == "both":
			dirs = []int{Up, Down}
		default:
			return nil, fmt.Errorf("%s: expected @up, @down or @both, got @%s", part, dir)
		}
		if hasDir && !kind.directional {
			return nil, fmt.Errorf("%s: %s has no direction (only latency, bandwidth and blackhole do)", part, name)
		}
		if seen[name] && !hasDir {
			return nil, fmt.Errorf("%s: %s given twice", part, name)
		}
		seen[name] = true
		if kind.value && !hasVal {
			return nil, fmt.Errorf("%s: expected %s:VALUE", part, name)
		}
		if !kind.value && hasVal {
			return nil, fmt.Errorf("%s: %s takes no value", part, name)
		}
		f.parts = append(f.parts, faultPart{kind, part})
		var err error
		switch name {
		case "reset":
			if d, derr := time.ParseDuration(val); derr == nil && d > 0 {
				f.ResetTime = d
			} else {
				f.ResetBytes, err = parseSize(val)
			}
		case "blackhole":
			for _, d := range dirs {
				f.Blackhole[d] = true
			}
		case "latency":
			lat, jit, _ := strings.Cut(val, "~")
			var l, j time.Duration
			if l, err = parseDuration(lat); err == nil && jit != "" {
				j, err = parseDuration(jit)
			}
			for _, d := range dirs {
				f.Latency[d], f.Jitter[d] = l, j
			}
		case "connect-latency":
			f.ConnectLatency, err = parseDuration(val)
		case "bandwidth":
			var r int64
			if r, err = parseSize(strings.TrimSuffix(val, "/s")); err == nil && r == 0 {
				err = fmt.Errorf("a bandwidth of 0 is a blackhole: write blackhole")
			}
			for _, d := range dirs {
				f.Bandwidth[d] = r
			}
		case "limit":
			f.Limit, err = parseSize(val)
		case "slice":
			n, delay, _ := strings.Cut(val, "~")
			var sz int64
			if sz, err = parseSize(n); err == nil && sz == 0 {
				err = fmt.Errorf("a slice of 0 bytes carries nothing")
			}
			f.Slice = int(min(sz, 1<<20))
			if err == nil && delay != "" {
				f.SliceDelay, err = parseDuration(delay)
			}
		case "slow-close":
			f.SlowClose, err = parseDuration(val)
		case "loss":
			f.Loss, err = parseProbability(val)
		case "duplicate":
			f.Duplicate, err = parseProbability(val)
		case "toxicity":
			f.Toxicity, err = parseProbability(val)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %v", part, err)
		}
	}
	f.views = [2]*Faults{f.only(true), f.only(false)}
	return f, nil
}

// faultPart is one FAULT of a Faults, as written.
type faultPart struct {
	kind *faultKind
	text string
}

// only is what of f applies to streams (TCP, Unix) or to UDP: f itself
// when all of it does, else a copy without the rest.
func (f *Faults) only(stream bool) *Faults {
	applies := func(k *faultKind) bool { return stream && k.stream || !stream && k.dgram }
	var kept []string
	all := true
	for _, p := range f.parts {
		if applies(p.kind) {
			kept = append(kept, p.text)
		} else {
			all = false
		}
	}
	if all {
		return f
	}
	v := *f
	v.parts, v.views = nil, [2]*Faults{}
	v.Text = strings.Join(kept, "+")
	if stream {
		v.Loss, v.Duplicate = 0, 0
	} else {
		v.ResetBytes, v.ResetTime, v.Limit = -1, 0, -1
		v.ConnectLatency, v.SlowClose, v.Slice, v.SliceDelay = 0, 0, 0, 0
	}
	return &v
}

// For is what of f applies to a socket of type t: TypeStream for TCP and
// Unix streams, TypeDgram for UDP (a DEST without tcp: or udp:, or a name,
// covers both, and each gets its own share). It is f itself when all of f
// applies (and for another type, or a Faults built by hand), and the same
// pointer at each call. What is left may do nothing (Active is false).
func (f *Faults) For(t SockType) *Faults {
	if f == nil {
		return nil
	}
	var v *Faults
	switch t {
	case TypeStream:
		v = f.views[0]
	case TypeDgram:
		v = f.views[1]
	}
	if v == nil {
		return f // built by hand, or not a relayed kind
	}
	return v
}

// CheckDest says why f cannot be given to d in a rule narrowed to types
// (0: every type): a fault with no meaning on the one protocol d covers
// (reset, limit, slice, slow-close, connect-latency on udp:; loss,
// duplicate on tcp: or a Unix socket), naming the fault, the protocol and
// what to use instead. A DEST of TCP and UDP takes every fault: each
// protocol gets what applies to it (For). A rule's checks call it for
// each of its DESTs.
func (f *Faults) CheckDest(d Dest, types TypeSet) error {
	if f == nil {
		return nil
	}
	stream, dgram := false, false
	what := ""
	switch d.Kind {
	case DestInet:
		stream = d.Types.Has(TypeStream) && types.Has(TypeStream)
		dgram = d.Types.Has(TypeDgram) && types.Has(TypeDgram)
		what = "TCP"
		if !stream {
			what = "UDP"
		}
	case DestUnix, DestAbstract, DestUnixAny:
		// Unix datagram sockets are not relayed (the sentry says so once).
		stream, what = types.Has(TypeStream), "Unix streams"
	}
	if !stream && !dgram || stream && dgram {
		return nil
	}
	for _, p := range f.parts {
		if stream && p.kind.stream || dgram && p.kind.dgram {
			continue
		}
		on := "TCP and Unix streams"
		if p.kind.dgram {
			on = "UDP"
		}
		return fmt.Errorf("%s has no meaning on %s, only on %s: %s; for %s use %s", p.text, what, on, p.kind.why, what, p.kind.instead)
	}
	return nil
}

// Active reports whether the faults do anything to a stream.
func (f *Faults) Active() bool {
	return f != nil && f.Toxicity > 0 && (f.ConnectLatency > 0 || f.Latency != [2]time.Duration{} ||
		f.Bandwidth != [2]int64{} || f.ResetBytes >= 0 || f.ResetTime > 0 || f.Blackhole != [2]bool{} ||
		f.SlowClose > 0 || f.Limit >= 0 || f.Slice > 0 || f.Loss > 0 || f.Duplicate > 0)
}

func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = n, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("expected a size such as 0, 512, 16KB or 1MiB")
	}
	return n * mult, nil
}

func parseProbability(s string) (float64, error) {
	p, err := strconv.ParseFloat(s, 64)
	if err != nil || p < 0 || p > 1 || math.IsNaN(p) {
		return 0, fmt.Errorf("expected a probability from 0 to 1, such as 0.1")
	}
	return p, nil
}
