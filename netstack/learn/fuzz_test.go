package learn

import (
	"bytes"
	"path"
	"regexp"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

// fuzzUses are the uses FuzzMerge picks from, one per bit.
var fuzzUses = []Use{
	newUse,
	udp("10.0.0.2:53", ""),
	tcp("[fd00::1]:40000", ""),
	{Kind: Unix, Path: "/run/a*b c", Count: 1},
	{Kind: Unix, Path: "x #y: z\n", Abstract: true, Count: 1},
	{Kind: Other, Family: "netlink", Count: 1},
	{Kind: Inet, Proto: "tcp", Addr: ap("127.0.0.1:80"), Self: true},
	{Kind: Unix},
}

func FuzzMerge(f *testing.F) {
	for _, c := range mergeCases {
		f.Add([]byte(c.existing), uint8(1))
	}
	for _, c := range mergeErrorCases {
		f.Add([]byte(c.existing), uint8(0xff))
	}
	f.Add([]byte("rules:\n  - allow: a\n  - |\n    x\n  # c\n"), uint8(0x3f))
	f.Add([]byte("  version: 1\n  rules:\n  - allow: a\n"), uint8(0x21))
	f.Add([]byte("0:\r\n "), uint8(1))
	f.Add([]byte("\r\n0:\r"), uint8(1))
	f.Fuzz(func(t *testing.T, existing []byte, sel uint8) {
		var uses []Use
		for i, u := range fuzzUses {
			if sel&(1<<i) != 0 {
				uses = append(uses, u)
			}
		}
		orig := bytes.Clone(existing)
		out, added, err := Merge(existing, "p.yaml", uses, nil, mergeOpts)
		if !bytes.Equal(existing, orig) {
			t.Fatal("Merge changed its input")
		}
		// Mergeable, checked before PROGRAM runs, foresees Merge.
		if merr := Mergeable(existing, "p.yaml"); (err != nil || len(added) > 0) && (merr == nil) != (err == nil) {
			t.Fatalf("Merge: %v, but Mergeable: %v", err, merr)
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "p.yaml:") {
				t.Fatalf("error %q does not start with the path", err)
			}
			return
		}
		if len(added) == 0 {
			if !bytes.Equal(out, existing) {
				t.Fatalf("nothing added, but the file changed to %q", out)
			}
			return
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(out, &doc); err != nil {
			t.Fatalf("the output does not parse: %v\n%q", err, out)
		}
		if bad, ok := linesKept(string(existing), string(out)); !ok {
			t.Fatalf("line %q of the file is lost in\n%q", bad, out)
		}
		// With everything covered, the file stays as it is.
		same, more, err := Merge(existing, "p.yaml", uses, func(Use) bool { return true }, mergeOpts)
		if err != nil || !bytes.Equal(same, existing) || more != nil {
			t.Fatalf("all covered: %q, %v, %v", same, more, err)
		}
	})
}

// emptyValue is what Merge may remove from the rules: line.
var emptyValue = regexp.MustCompile(`^(\[[ \t]*\]|~|null|Null|NULL)`)

// linesKept reports whether every line of old is in out, in order; the one
// line that held an empty rules value may have lost it. It returns the
// first line missing.
func linesKept(old, out string) (string, bool) {
	outLines := strings.Split(out, "\n")
	j := 0
	for _, l := range strings.Split(old, "\n") {
		for j < len(outLines) && !lineKept(l, outLines[j]) {
			j++
		}
		if j == len(outLines) {
			return l, false
		}
		j++
	}
	return "", true
}

func lineKept(old, now string) bool {
	// A last line without a line ending gets the file's: CRLF, maybe.
	old, now = strings.TrimRight(old, "\r"), strings.TrimRight(now, "\r")
	if old == now {
		return true
	}
	for i := range len(old) {
		if m := emptyValue.FindString(old[i:]); m != "" && strings.TrimRight(old[:i], " \t")+old[i+len(m):] == now {
			return true
		}
	}
	return false
}

// FuzzUnixDest checks that a unix: rule matches exactly its path, and
// survives YAML and the policy's trimming.
func FuzzUnixDest(f *testing.F) {
	for _, c := range globSeeds() {
		f.Add(c, false)
		f.Add(c, true)
	}
	f.Fuzz(func(t *testing.T, name string, abstract bool) {
		rules := Rules([]Use{{Kind: Unix, Path: name, Abstract: abstract}}, Options{})
		if len(rules) == 0 {
			return
		}
		want := name
		if !abstract {
			want = path.Clean(name)
		}
		d := rules[0].Dest
		if strings.TrimSpace(d) != d {
			t.Fatalf("dest %q has white space the policy trims", d)
		}
		pattern := unixPattern(t, d, abstract)
		if ok, err := path.Match(pattern, want); !ok || err != nil {
			t.Fatalf("path.Match(%q, %q) = %v, %v", pattern, want, ok, err)
		}
		if ok, _ := path.Match(pattern, want+"x"); ok {
			t.Fatalf("path.Match(%q, %q) = true", pattern, want+"x")
		}
		if got := roundTrip(t, rules[0]); got != d {
			t.Fatalf("the rule line reads back as %q, want %q", got, d)
		}
	})
}

// globSeeds is the seed corpus of FuzzUnixDest.
func globSeeds() []string {
	return []string{"/tmp/a*b", "/tmp/[ab]", `/tmp/a\b`, "/tmp/sock ", "x\t", "a\xffb", "a\x00b", "'\"#: [x]\n", "\u0085"}
}
