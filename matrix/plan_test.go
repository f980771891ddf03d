package matrix

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseFault(t *testing.T) {
	const d = "tcp:web.test:8080"
	for _, c := range []struct {
		spec, name string
		flag       []string
	}{
		{"refuse", "refuse", []string{"--refuse", d}},
		{"timeout:5s", "timeout:5s", []string{"--timeout", d + "=5s"}},
		{"timeout=5s", "timeout:5s", []string{"--timeout", d + "=5s"}},
		{"timeout", "timeout", []string{"--timeout", d}},
		{"unreachable", "unreachable", []string{"--unreachable", d}},
		{"unreachable:host", "unreachable:host", []string{"--unreachable", d + "=host"}},
		{"deny", "deny", []string{"--deny", d}},
		{"deny=EPERM", "deny:EPERM", []string{"--deny", d + "=EPERM"}},
		{"reset:0", "reset:0", []string{"--fault", d + "=reset:0"}},
		{"reset-after-0", "reset:0", []string{"--fault", d + "=reset:0"}},
		{"reset-after-512", "reset:512", []string{"--fault", d + "=reset:512"}},
		{"reset:2s", "reset:2s", []string{"--fault", d + "=reset:2s"}},
		{"blackhole", "blackhole", []string{"--fault", d + "=blackhole"}},
		{"latency=2s", "latency:2s", []string{"--fault", d + "=latency:2s"}},
		{"latency:2s@up+loss=0.1", "latency:2s@up+loss:0.1", []string{"--fault", d + "=latency:2s@up+loss:0.1"}},
		{"reset-after-100@down+toxicity=0.5", "reset:100@down+toxicity:0.5", []string{"--fault", d + "=reset:100@down+toxicity:0.5"}},
		// Values are passed on: sandbox run judges them.
		{"latency:soon", "latency:soon", []string{"--fault", d + "=latency:soon"}},
	} {
		f, err := ParseFault(c.spec)
		if err != nil {
			t.Errorf("%s: %v", c.spec, err)
			continue
		}
		if f.Name != c.name || f.Spec != c.spec || !reflect.DeepEqual(f.Flag(d), c.flag) {
			t.Errorf("%s: name %q flag %q, want %q %q", c.spec, f.Name, f.Flag(d), c.name, c.flag)
		}
		if f.IsLive() != (c.flag[0] == "--fault") {
			t.Errorf("%s: live=%v", c.spec, f.IsLive())
		}
	}
	for spec, want := range map[string]string{
		"refuse:1s":     "refuse takes no value",
		"unreachable:x": "want unreachable, unreachable:net or unreachable:host",
		"deny:EBADF":    "want deny, deny:EACCES or deny:EPERM",
		"timeout:":      "want timeout:DURATION",
		"latency:1s++x": "an empty part between +",
		// Names are matrix's to know: its own cells, and the live faults.
		"bogus":             "unknown fault bogus (known: refuse, timeout, unreachable, deny, reset, blackhole, latency, connect-latency, bandwidth, limit, slice, slow-close, loss, duplicate, toxicity)",
		"frobnicate:7":      "unknown fault frobnicate (known: refuse,",
		"latency:1s+jam@up": "unknown fault jam (known:",
		"refuse+latency:1s": "refuse is a connect verdict, not a fault on a live connection: give it as a cell of its own (--faults refuse,...)",
	} {
		if _, err := ParseFault(spec); err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "--faults "+spec+": ") {
			t.Errorf("%s: error %v, want --faults %s: ...%s", spec, err, spec, want)
		}
	}
}

func TestParseFaults(t *testing.T) {
	fs, err := ParseFaults(DefaultFaults)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var kinds []Kind
	for _, f := range fs {
		names = append(names, f.Name)
		kinds = append(kinds, f.Kind)
	}
	if strings.Join(names, ",") != DefaultFaults || !reflect.DeepEqual(kinds, []Kind{Refuse, Timeout, Unreachable, Live, Live, Live}) {
		t.Errorf("default: %v %v", names, kinds)
	}
	// Aliases of one fault are one fault.
	fs, err = ParseFaults("timeout=5s, timeout:5s,reset-after-0,reset:0")
	if err != nil || len(fs) != 2 || fs[0].Name != "timeout:5s" || fs[1].Name != "reset:0" {
		t.Errorf("aliases: %v %v", fs, err)
	}
	for _, bad := range []string{"", "refuse,,timeout", "refuse,"} {
		if _, err := ParseFaults(bad); err == nil || !strings.Contains(err.Error(), "an empty fault") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// A policy as sandbox learn writes it (README, "Testing untrusted binaries").
const learned = `# Learned by sandbox learn at 2026-12-01T22:14:07Z from: curl -sS http://api.example.test:8080/
# Review it, then: sandbox run --policy FILE -- PROGRAM
version: 1
default: deny
rules:
  # Hosts by name: their addresses follow the program's own DNS lookups
  - allow: tcp:api.example.test:8080  # 1 connect, first 22:14:07.507 by curl[29417]
  # DNS resolvers
  - allow: udp:10.231.0.2:53  # 1 connect, first 22:14:07.498 by curl[29421]
  # Added by sandbox learn at 2026-12-01T22:14:07Z from: curl -sS http://cdn.example.test:8080/
  - allow: tcp:cdn.example.test:8080  # 1 connect, first 22:14:07.551 by curl[29429]
`

func TestPolicyDests(t *testing.T) {
	got, err := PolicyDests([]byte(learned))
	if want := []string{"tcp:api.example.test:8080", "udp:10.231.0.2:53", "tcp:cdn.example.test:8080"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("learned: %q %v, want %q", got, err, want)
	}
	got, err = PolicyDests([]byte(`default: deny
rules:
  - allow: [unix:/run/postgresql/*, "unix:@pg*", unix:/run/app.sock, "unix:@exact", tcp:127.0.0.1:5432]
  - deny: 10.0.0.0/8
  - refuse: tcp:10.1.2.3:80
  - allow: '*'
  - allow: tcp:127.0.0.1:5432
  - allow: "tcp:*.example.com:443"
  - allow: "[::1]:8080-8090"
    family: inet6
  - redirect: tcp:10.1.2.3:443
    to: 127.0.0.1:8443
network:
  hosts:
    - address: 10.50.0.10
`))
	want := []string{"unix:/run/app.sock", "unix:@exact", "tcp:127.0.0.1:5432", "tcp:*.example.com:443", "[::1]:8080-8090"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %q %v, want %q", got, err, want)
	}
	if got, err := PolicyDests(nil); err != nil || len(got) != 0 {
		t.Errorf("empty policy: %q %v", got, err)
	}
	if _, err := PolicyDests([]byte("rules:\n  - allow: {a: b}\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("a mapping: %v", err)
	}
	if _, err := PolicyDests([]byte("rules: [")); err == nil {
		t.Error("bad YAML: no error")
	}
}

func TestPort(t *testing.T) {
	for dest, port := range map[string]string{
		"udp:10.231.0.2:53":  "53",
		"tcp:10.231.0.2:53":  "53",
		"10.0.0.1:53":        "53",
		"udp:[fd00::2]:53":   "53",
		"tcp:web.test:8080":  "8080",
		"web.test:53":        "53",
		"tcp:10.0.0.0/8:53":  "53",
		"10.0.0.0/8":         "",
		"[::1]:8080-8090":    "8080-8090",
		"[::1]":              "",
		"::1":                "",
		"fd00::53":           "",
		"unix:/run/x:53":     "",
		"unix:@name:53":      "",
		"tcp:1.2.3.4:5300":   "5300",
		"udp:127.0.0.53:53":  "53",
		"udp:127.0.0.53:530": "530",
	} {
		if got := Port(dest); got != port {
			t.Errorf("Port(%s) = %q, want %q", dest, got, port)
		}
		if IsDNS(dest) != (port == "53") {
			t.Errorf("IsDNS(%s) = %v", dest, IsDNS(dest))
		}
	}
}

func TestPlan(t *testing.T) {
	faults, err := ParseFaults("refuse,reset-after-0")
	if err != nil {
		t.Fatal(err)
	}
	dests := []string{"tcp:web.test:8080", "udp:10.231.0.2:53", "unix:/run/app.sock"}
	o := Options{Program: []string{"./client", "-v"}, Faults: faults}
	p := NewPlan(dests, o)
	var got []string
	for _, r := range p.Runs {
		got = append(got, r.Label()+": "+strings.Join(r.Args, " "))
	}
	want := []string{
		"tcp:web.test:8080 × refuse: run --grace 2s --refuse tcp:web.test:8080 --allow-all -- ./client -v",
		"tcp:web.test:8080 × reset:0: run --grace 2s --fault tcp:web.test:8080=reset:0 --allow-all -- ./client -v",
		"unix:/run/app.sock × refuse: run --grace 2s --refuse unix:/run/app.sock --allow-all -- ./client -v",
		"unix:/run/app.sock × reset:0: run --grace 2s --fault unix:/run/app.sock=reset:0 --allow-all -- ./client -v",
	}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(p.SkippedDNS, []string{"udp:10.231.0.2:53"}) {
		t.Errorf("plan:\n%s\nskipped %q", strings.Join(got, "\n"), p.SkippedDNS)
	}
	// --dns: the resolver too; --policy: after the fault's flag.
	o.DNS, o.Policy = true, "app.yaml"
	p = NewPlan(dests, o)
	if len(p.Runs) != 6 || len(p.SkippedDNS) != 0 ||
		strings.Join(p.Runs[2].Args, " ") != "run --grace 2s --refuse udp:10.231.0.2:53 --policy app.yaml -- ./client -v" {
		t.Errorf("--dns --policy: %v %q", p.Runs, p.SkippedDNS)
	}
	b := BaselineRun(o, "/d/baseline.yaml", "/d/baseline.json")
	if !b.IsBaseline() || b.Label() != "baseline" || strings.Join(b.Args, " ") != "run --grace 2s --policy app.yaml --summary-json /d/baseline.json -- ./client -v" {
		t.Errorf("baseline with a policy: %q", b.Args)
	}
	o.Policy = ""
	b = BaselineRun(o, "/d/baseline.yaml", "/d/baseline.json")
	if strings.Join(b.Args, " ") != "learn --grace 2s --out /d/baseline.yaml --summary-json /d/baseline.json -- ./client -v" {
		t.Errorf("learned baseline: %q", b.Args)
	}
	if ProgramName([]string{"/usr/bin/curl", "-s"}) != "curl" {
		t.Error("ProgramName")
	}
}

// TestInapplicableFaults: a fault with no meaning on a destination's
// protocol is planned skipped, with the sandbox's reason; on a DEST of both
// protocols, when the baseline reached it by one only.
func TestInapplicableFaults(t *testing.T) {
	faults, err := ParseFaults("refuse,reset:0,loss:0.5,blackhole,latency:1s+slice:10,duplicate:1+latency:1s")
	if err != nil {
		t.Fatal(err)
	}
	uses, err := ReadUses([]byte(`{"connects": [
		{"dst": "udp:10.231.0.2:9001", "count": 3, "verdict": "allow", "errno": ""},
		{"dst": "tcp:10.231.0.2:8080", "name": "web.test", "count": 1, "verdict": "allow", "errno": ""},
		{"dst": "tcp:10.231.0.2:7000", "count": 1, "verdict": "allow", "errno": ""},
		{"dst": "udp:10.231.0.2:7000", "count": 1, "verdict": "allow", "errno": ""},
		{"dst": "unix:/run/app.sock", "count": 1, "verdict": "allow", "errno": ""}],
		"native": 0}`))
	if err != nil || len(uses) != 5 || uses[1] != (Use{Dst: "tcp:10.231.0.2:8080", Name: "web.test"}) {
		t.Fatalf("uses %v %v", uses, err)
	}
	dests := []string{"udp:10.231.0.2:9001", "tcp:web.test:8080", "unix:/run/app.sock", "10.231.0.2:9001", "web.test:8080", "10.231.0.2:7000", "10.231.0.9:1"}
	p := NewPlan(dests, Options{Program: []string{"./client"}, Faults: faults, DNS: true, Uses: uses})
	skipped := map[string]string{}
	for _, r := range p.Runs {
		if r.Skip != "" {
			skipped[r.Label()] = r.Skip
		}
	}
	want := map[string]string{
		"udp:10.231.0.2:9001 × reset:0":               "reset:0 has no meaning on UDP, only on TCP and Unix streams: a datagram socket has no connection to reset; for UDP use blackhole (every datagram dropped) or loss:P",
		"udp:10.231.0.2:9001 × latency:1s+slice:10":   "slice:10 has no meaning on UDP",
		"tcp:web.test:8080 × loss:0.5":                "loss:0.5 has no meaning on TCP",
		"tcp:web.test:8080 × duplicate:1+latency:1s":  "duplicate:1 has no meaning on TCP",
		"unix:/run/app.sock × loss:0.5":               "loss:0.5 has no meaning on Unix streams",
		"unix:/run/app.sock × duplicate:1+latency:1s": "duplicate:1 has no meaning on Unix streams",
		// Of both protocols, reached by one only.
		"10.231.0.2:9001 × reset:0":              "reset:0 has no meaning on UDP, only on TCP and Unix streams: a datagram socket has no connection to reset; for UDP use blackhole (every datagram dropped) or loss:P (the baseline reached 10.231.0.2:9001 over UDP only)",
		"10.231.0.2:9001 × latency:1s+slice:10":  "(the baseline reached 10.231.0.2:9001 over UDP only)",
		"web.test:8080 × loss:0.5":               "loss:0.5 has no meaning on TCP, only on UDP: a stream loses no byte",
		"web.test:8080 × duplicate:1+latency:1s": "(the baseline reached web.test:8080 over TCP only)",
	}
	for label, reason := range want {
		if !strings.Contains(skipped[label], reason) {
			t.Errorf("%s: skipped %q, want %q", label, skipped[label], reason)
		}
		delete(skipped, label)
	}
	// Reached by both (7000), or by neither (10.231.0.9:1): every cell runs.
	for label, reason := range skipped {
		t.Errorf("%s: skipped (%s)", label, reason)
	}
}
