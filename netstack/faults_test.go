package netstack

import (
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
	if *f != want {
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
		"jam:1":           "unknown fault",
		"limit:1+limit:2": "given twice",
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
