package netstack

import (
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/; run a target with e.g.
//
//	go test ./netstack -run '^$' -fuzz '^FuzzDecide$' -fuzztime 60s

// FuzzDecide builds a random policy and random requests from the input and
// checks that the trie lookup picks exactly the rule a linear scan picks.
func FuzzDecide(f *testing.F) {
	f.Add([]byte{3, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte("\x20rules and requests from bytes\xff\x80\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &bytesChooser{b: data}
		rules := randRules(c, 1+c.IntN(48))
		p, err := NewPolicy("fuzz", DefaultSelf, rules, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 64 && c.i < len(c.b); i++ {
			checkFastEqualsLinear(t, p, randRequest(c))
		}
	})
}

// FuzzParseDest checks that ParseDest never panics and that what it accepts
// prints in a form it reads back to the same Dest.
func FuzzParseDest(f *testing.F) {
	for _, s := range []string{"*", "tcp:127.0.0.1:5432", "[fd00::/8]:53", "unix:/run/*", "unix:@x", "udp:*:53", "tcp:db.internal:1-2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDest(s, stubResolver)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "destination ") {
				t.Fatalf("error without context: %v", err)
			}
			return
		}
		for _, e := range d.Expand() {
			e.Unresolved = "" // read back without a resolver: nothing to resolve
			back, err := ParseDest(e.String(), nil)
			if err != nil || !reflect.DeepEqual(back, e) {
				t.Fatalf("%q: %+v prints as %q, which reads back as %+v, %v", s, e, e.String(), back, err)
			}
		}
		for _, r := range []Request{inet(TypeStream, "10.0.0.1:80"), inet(TypeDgram, "[::ffff:1.2.3.4]:53"), unixPath("/run/a"), abstract("x")} {
			d.Matches(r)
		}
	})
}

// FuzzParsePolicy checks that ParsePolicy never panics, that every error
// line names FILE:LINE:COL, and that an accepted policy's normalized form
// reads back to the same policy.
func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte(topoPolicy))
	f.Add([]byte("default: deny\nrules:\n  - allow: tcp:127.0.0.1:5432\n  - deny: 10.0.0.0/8\n    errno: EPERM\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePolicy("f.yaml", data, stubResolver)
		if err != nil {
			checkErrorLines(t, "f.yaml", data, err.Error())
			return
		}
		text := p.String()
		q, err := ParsePolicy("normalized.yaml", []byte(text), nil)
		if err != nil {
			t.Fatalf("normalized form does not parse: %v\n%s", err, text)
		}
		if a, b := p.format(false), q.format(false); a != b {
			t.Fatalf("round trip changed the policy:\n%s\nvs\n%s", a, b)
		}
		for _, r := range []Request{inet(TypeStream, "10.50.0.10:80"), inet(TypeDgram, "10.50.0.255:9"), unixPath("/run/a"), {Family: FamilyOther}} {
			a, b := p.Decide(r), q.Decide(r)
			a.Rule, b.Rule = "", "" // where a rule was written differs, by design
			if a != b {
				t.Fatalf("normalized policy decides %s as %+v, the original as %+v", r.Dest(), b, a)
			}
			p.Explain(r)
		}
	})
}

var snippetLine = regexp.MustCompile(`^ *([0-9]+) \| `)

// checkErrorLines: every error starts with FILE:LINE:COL: on a line of the
// source, and, when it quotes the source, quotes that line with a caret.
func checkErrorLines(t *testing.T, file string, data []byte, msg string) {
	t.Helper()
	// YAML breaks lines at CR LF, LF and a lone CR.
	src := strings.Split(strings.ReplaceAll(strings.ReplaceAll(string(data), "\r\n", "\n"), "\r", "\n"), "\n")
	lines := strings.Split(msg, "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		fs := strings.SplitN(l, ":", 4)
		if len(fs) < 4 || fs[0] != file || fs[1] == "" || fs[2] == "" || strings.Trim(fs[1]+fs[2], "0123456789") != "" {
			t.Fatalf("error line %q does not start with FILE:LINE:COL:", l)
		}
		n, _ := strconv.Atoi(fs[1])
		if n < 1 || n > len(src) {
			t.Fatalf("error %q: line %d is not in the %d-line source", l, n, len(src))
		}
		if i+1 < len(lines) {
			if m := snippetLine.FindStringSubmatch(lines[i+1]); m != nil {
				if m[1] != fs[1] || i+2 >= len(lines) || !strings.HasPrefix(lines[i+2], "      | ") || !strings.HasSuffix(lines[i+2], "^") {
					t.Fatalf("error %q quotes %q then %q", l, lines[i+1], lines[min(i+2, len(lines)-1)])
				}
				i += 2
			}
		}
	}
}
