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
	// Bandwidth limits each direction to bytes per second (0: none).
	Bandwidth [2]int64
	// ResetAfter resets the connection (the program gets ECONNRESET, as
	// from an RST) once ResetBytes bytes have passed, counted both ways
	// (0: at the first data), or after ResetTime; -1 and 0: never.
	ResetBytes int64
	ResetTime  time.Duration
	// Blackhole stops delivering in a direction: the bytes are not read
	// any more, as if the network dropped them.
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
	// Loss and Duplicate are per datagram, both ways (UDP).
	Loss, Duplicate float64
	// Text is the fault as written, for logs.
	Text string
}

// Directions of a connection.
const (
	Up   = 0
	Down = 1
)

// FaultNames documents the fault syntax, for help texts.
const FaultNames = "reset:N|DURATION, blackhole, latency:DURATION[~JITTER], connect-latency:DURATION, bandwidth:RATE, " +
	"limit:N, slice:N[~DELAY], slow-close:DURATION, loss:P, duplicate:P, toxicity:P; @up, @down or @both after a " +
	"directional one; several joined by +"

// ParseFaults parses FAULT[+FAULT...], each NAME[:VALUE][@up|@down|@both].
// Sizes take B, KB, MB (1000s) or KiB, MiB (1024s); RATE is a size per
// second; P is a probability from 0 to 1.
func ParseFaults(s string) (*Faults, error) {
	f := &Faults{Toxicity: 1, ResetBytes: -1, Limit: -1, Text: s}
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("expected a fault: %s", FaultNames)
	}
	seen := map[string]bool{}
	for _, part := range strings.Split(s, "+") {
		part = strings.TrimSpace(part)
		spec, dir, hasDir := strings.Cut(part, "@")
		name, val, hasVal := strings.Cut(spec, ":")
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
		directional := name == "latency" || name == "bandwidth" || name == "blackhole"
		if hasDir && !directional {
			return nil, fmt.Errorf("%s: %s has no direction (only latency, bandwidth and blackhole do)", part, name)
		}
		if seen[name] && !hasDir {
			return nil, fmt.Errorf("%s: %s given twice", part, name)
		}
		seen[name] = true
		needVal := name != "blackhole"
		if needVal && !hasVal {
			return nil, fmt.Errorf("%s: expected %s:VALUE", part, name)
		}
		if !needVal && hasVal {
			return nil, fmt.Errorf("%s: blackhole takes no value", part)
		}
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
		default:
			return nil, fmt.Errorf("%s: unknown fault %q; expected %s", part, name, FaultNames)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %v", part, err)
		}
	}
	return f, nil
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
