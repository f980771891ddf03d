package netstack

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseFaults(t *testing.T) {
	f, err := ParseFaults("reset:1KiB+latency:200ms~50ms@both+bandwidth:10KB@up+blackhole@down+slice:16~1ms+limit:2MB+slow-close:1s+toxicity:0.25+connect-latency:1s+loss:0.1+duplicate:0.5")
	if err != nil {
		t.Fatal(err)
	}
	want := Faults{Toxicity: 0.25, ConnectLatency: time.Second, Latency: [2]time.Duration{200 * time.Millisecond, 200 * time.Millisecond},
		Jitter: [2]time.Duration{50 * time.Millisecond, 50 * time.Millisecond}, Bandwidth: [2]int64{10000, 0}, ResetBytes: 1024,
		Blackhole: [2]bool{false, true}, SlowClose: time.Second, Limit: 2000000, Slice: 16, SliceDelay: time.Millisecond, Loss: 0.1, Duplicate: 0.5}
	want.Text = f.Text
	got := *f
	got.parts, got.views = nil, [2]*Faults{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", *f, want)
	}
	if f, _ := ParseFaults("reset:2s"); f.ResetTime != 2*time.Second || f.ResetBytes != -1 {
		t.Errorf("reset by time: %+v", f)
	}
	if f, _ := ParseFaults("blackhole"); f.Blackhole != [2]bool{true, true} || !f.Active() {
		t.Errorf("blackhole both ways: %+v", f)
	}
	if f, _ := ParseFaults("toxicity:0.5"); f.Active() {
		t.Error("toxicity alone does nothing, yet Active")
	}
	for in, want := range map[string]string{
		"":                "expected a fault",
		"reset":           "expected reset:VALUE",
		"reset:-1":        "expected a size",
		"latency:fast":    "expected a duration",
		"blackhole:1":     "takes no value",
		"loss:2":          "probability from 0 to 1",
		"bandwidth:0":     "write blackhole",
		"slice:0":         "carries nothing",
		"limit:1@up":      "has no direction",
		"latency:1s@side": "expected @up, @down or @both",
		"jam:1":           "jam:1: unknown fault jam (known: reset, blackhole, latency, connect-latency, bandwidth, limit, slice, slow-close, loss, duplicate, toxicity)",
		"bogus":           "unknown fault bogus (known: reset, blackhole,",
		"limit:1+limit:2": "given twice",
		"latency:1s+":     "an empty fault between +",
		// A connect verdict is no fault: its own flag gives it.
		"refuse":            "refuse is a connect verdict, not a fault on a live connection: write --refuse DEST",
		"deny":              "deny is a connect verdict, not a fault on a live connection: write --deny DEST[=EACCES|EPERM]",
		"deny:EPERM":        "write --deny DEST[=EACCES|EPERM]",
		"timeout:5s":        "write --timeout DEST[=DURATION]",
		"unreachable":       "write --unreachable DEST[=net|host]",
		"latency:1s+refuse": "write --refuse DEST",
	} {
		if _, err := ParseFaults(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseFaults(%q) = %v, want %q", in, err, want)
		}
	}
}

func TestFaultRules(t *testing.T) {
	rl, err := ParseFlag("fault", "tcp:10.0.0.1:443=reset:0", nil)
	if err != nil || rl.Verdict.Action != Allow || rl.Verdict.Faults == nil || rl.Verdict.Faults.ResetBytes != 0 {
		t.Fatalf("--fault: %+v, %v", rl, err)
	}
	for _, bad := range []string{"tcp:10.0.0.1:443", "*=reset:0", "tcp:10.0.0.1:443=nope"} {
		if _, err := ParseFlag("fault", bad, nil); err == nil {
			t.Errorf("--fault %s: accepted", bad)
		}
	}
	p, err := ParsePolicy("p.yaml", []byte("rules:\n  - allow: tcp:10.0.0.1:443\n    faults: [latency:1s, reset:10KB]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	d := p.Decide(inet(TypeStream, "10.0.0.1:443"))
	if d.Action != Allow || d.Faults == nil || d.Faults.Latency[Down] != time.Second || d.Faults.ResetBytes != 10000 {
		t.Errorf("decision %+v", d)
	}
	if _, err := ParsePolicy("p.yaml", []byte("rules:\n  - deny: tcp:10.0.0.1:443\n    faults: reset:0\n"), nil); err == nil || !strings.Contains(err.Error(), "p.yaml:3:5: faults apply only to allow rules") {
		t.Errorf("faults on a deny: %v", err)
	}
	if _, err := ParsePolicy("p.yaml", []byte("rules:\n  - allow: tcp:10.0.0.1:443\n    faults: jam\n"), nil); err == nil || !strings.Contains(err.Error(), "p.yaml:3:13:") {
		t.Errorf("a bad fault: %v", err)
	}
}

// TestFaultsForEachProtocol: a fault with no meaning on a protocol is not
// given to its sockets; what is left is the same pointer at each call.
func TestFaultsForEachProtocol(t *testing.T) {
	f, err := ParseFaults("reset:0+latency:1s+loss:0.5+blackhole@down+bandwidth:1KB+slice:10+limit:5+slow-close:1s+connect-latency:1s+duplicate:1")
	if err != nil {
		t.Fatal(err)
	}
	s, d := f.For(TypeStream), f.For(TypeDgram)
	if s == f || d == f || s != f.For(TypeStream) || d != f.For(TypeDgram) {
		t.Fatalf("views: %p %p of %p, not stable", s, d, f)
	}
	if s.Loss != 0 || s.Duplicate != 0 || s.ResetBytes != 0 || s.Limit != 5 || s.Slice != 10 || s.Latency[Down] != time.Second ||
		s.Blackhole != [2]bool{false, true} || s.Bandwidth != [2]int64{1000, 1000} || s.ConnectLatency != time.Second {
		t.Errorf("TCP's share: %+v", *s)
	}
	if s.Text != "reset:0+latency:1s+blackhole@down+bandwidth:1KB+slice:10+limit:5+slow-close:1s+connect-latency:1s" {
		t.Errorf("TCP's share is written %q", s.Text)
	}
	if d.Loss != 0.5 || d.Duplicate != 1 || d.ResetBytes != -1 || d.ResetTime != 0 || d.Limit != -1 || d.Slice != 0 || d.SlowClose != 0 ||
		d.ConnectLatency != 0 || d.Latency[Down] != time.Second || d.Blackhole != [2]bool{false, true} || d.Bandwidth != [2]int64{1000, 1000} {
		t.Errorf("UDP's share: %+v", *d)
	}
	if d.Text != "latency:1s+loss:0.5+blackhole@down+bandwidth:1KB+duplicate:1" {
		t.Errorf("UDP's share is written %q", d.Text)
	}
	// All of it applies: f itself.
	both, _ := ParseFaults("latency:1s+blackhole@up+bandwidth:1KB+toxicity:0.5")
	if both.For(TypeStream) != both || both.For(TypeDgram) != both {
		t.Error("faults of both protocols are not their own shares")
	}
	// Nothing applies: nothing is active.
	if r, _ := ParseFaults("reset:0+limit:1"); r.For(TypeDgram).Active() || !r.For(TypeStream).Active() {
		t.Error("reset and limit are active on UDP")
	}
	if l, _ := ParseFaults("loss:1"); l.For(TypeStream).Active() || !l.For(TypeDgram).Active() {
		t.Error("loss is active on TCP")
	}
	// Built by hand: all of it, whatever the type.
	h := &Faults{Loss: 1, ResetBytes: 0}
	if h.For(TypeStream) != h || h.For(TypeDgram) != h || (*Faults)(nil).For(TypeStream) != nil {
		t.Error("a Faults built by hand")
	}
}

// TestFaultsCheckedAgainstTheirDest: a fault with no meaning on every
// protocol its DEST covers is refused, naming the fault, the protocol and
// what to use instead; a DEST of both protocols takes every fault.
func TestFaultsCheckedAgainstTheirDest(t *testing.T) {
	for _, c := range []struct {
		dest, faults string
		types        TypeSet
		want         string // "" for none
	}{
		{"udp:10.0.0.1:53", "reset:0", 0, "reset:0 has no meaning on UDP, only on TCP and Unix streams: a datagram socket has no connection to reset; for UDP use blackhole (every datagram dropped) or loss:P"},
		{"udp:10.0.0.1:53", "latency:1s+limit:10", 0, "limit:10 has no meaning on UDP, only on TCP and Unix streams: UDP has no FIN to send after N bytes"},
		{"udp:10.0.0.1:53", "slice:1", 0, "slice:1 has no meaning on UDP"},
		{"udp:10.0.0.1:53", "slow-close:1s", 0, "slow-close:1s has no meaning on UDP, only on TCP and Unix streams: UDP has no close to delay"},
		{"udp:10.0.0.1:53", "connect-latency:1s", 0, "connect-latency:1s has no meaning on UDP, only on TCP and Unix streams: UDP has no handshake to delay; for UDP use latency"},
		{"udp:10.0.0.1:53", "blackhole@down+bandwidth:1KB+latency:1s+loss:0.1+duplicate:0.1+toxicity:0.5", 0, ""},
		{"tcp:10.0.0.1:80", "loss:0.1", 0, "loss:0.1 has no meaning on TCP, only on UDP: a stream loses no byte"},
		{"tcp:10.0.0.1:80", "latency:1s+duplicate:1", 0, "duplicate:1 has no meaning on TCP, only on UDP: a stream delivers no byte twice (TCP discards a duplicate segment); for TCP use latency or slice"},
		{"tcp:10.0.0.1:80", "reset:0+blackhole+bandwidth:1KB+limit:1+slice:1+slow-close:1s+connect-latency:1s", 0, ""},
		{"unix:/run/x.sock", "loss:0.1", 0, "loss:0.1 has no meaning on Unix streams"},
		{"unix:@x", "reset:0", 0, ""},
		// A DEST of both protocols takes every fault; a rule's type narrows it.
		{"10.0.0.1:53", "reset:0+loss:0.1+slice:1", 0, ""},
		{"10.0.0.1:53", "reset:0", TypeSetOf(TypeDgram), "reset:0 has no meaning on UDP"},
		{"10.0.0.1:53", "loss:1", TypeSetOf(TypeStream), "loss:1 has no meaning on TCP"},
		{"api.example.com:443", "loss:1+reset:0", 0, ""},
		{"tcp:api.example.com:443", "loss:1", 0, "loss:1 has no meaning on TCP"},
	} {
		d, err := ParseDest(c.dest, nil)
		if err != nil {
			t.Fatal(err)
		}
		f, err := ParseFaults(c.faults)
		if err != nil {
			t.Fatal(err)
		}
		err = f.CheckDest(d, c.types)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s=%s (types %b): %v; want %q", c.dest, c.faults, c.types, err, c.want)
		}
	}
}

// TestFaultRulesOfTheOtherProtocol: a rule whose faults have no meaning on
// its DEST's protocol does not load, from a flag or a file (the file's
// error at the rule); a DEST of both protocols loads, and its decisions
// carry the whole set (the relay takes each protocol's share, For).
func TestFaultRulesOfTheOtherProtocol(t *testing.T) {
	for _, c := range []struct{ value, want string }{
		{"udp:10.0.0.1:53=reset:0", "--fault udp:10.0.0.1:53=reset:0: reset:0 has no meaning on UDP"},
		{"udp:10.0.0.1:53=latency:1s+limit:1KB", "limit:1KB has no meaning on UDP"},
		{"tcp:10.0.0.1:80=loss:0.5", "--fault tcp:10.0.0.1:80=loss:0.5: loss:0.5 has no meaning on TCP"},
		{"unix:/run/x.sock=duplicate:1", "duplicate:1 has no meaning on Unix streams"},
	} {
		if _, err := ParseFlag("fault", c.value, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("--fault %s: %v; want %q", c.value, err, c.want)
		}
	}
	if _, err := ParseFlag("fault", "10.0.0.1:53=reset:0+loss:0.5", nil); err != nil {
		t.Errorf("a DEST of both protocols: %v", err)
	}
	_, err := ParsePolicy("p.yaml", []byte("rules:\n  - allow: udp:10.0.0.1:53\n    faults: [latency:1s, reset:0]\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "p.yaml:2:") || !strings.Contains(err.Error(), "reset:0 has no meaning on UDP") {
		t.Errorf("a policy: %v", err)
	}
	// A rule's type narrows a DEST of both.
	_, err = ParsePolicy("p.yaml", []byte("rules:\n  - allow: 10.0.0.1:53\n    type: udp\n    faults: slice:10\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "slice:10 has no meaning on UDP") {
		t.Errorf("a policy, type udp: %v", err)
	}
	p, err := ParsePolicy("p.yaml", []byte("rules:\n  - allow: 10.0.0.1:53\n    faults: [reset:0, loss:1]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	d := p.Decide(inet(TypeDgram, "10.0.0.1:53"))
	if d.Faults == nil || d.Faults.For(TypeDgram).Loss != 1 || d.Faults.For(TypeDgram).ResetBytes != -1 || d.Faults.For(TypeStream).ResetBytes != 0 {
		t.Errorf("decision %+v", d)
	}
}
