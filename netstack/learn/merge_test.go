package learn

import (
	"bytes"
	"strings"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

var mergeOpts = Options{Now: t0, Command: []string{"curl", "-s", "https://new.test/"}}

// newUse is the use the merge cases add.
var newUse = Use{Kind: Inet, Proto: "tcp", Addr: ap("10.0.0.5:443"), Name: "new.test", Count: 1, First: t0.Add(123 * time.Millisecond), Comm: "curl", PID: 1234}

// addedText is what Merge writes for newUse at indent.
func addedText(indent, nl string) string {
	return indent + "# Added by sandbox learn at 2026-12-01T21:50:00Z from: curl -s https://new.test/" + nl +
		indent + "- allow: tcp:new.test:443  # 1 connect, first 21:50:00.123 by curl[1234]" + nl
}

var mergeCases = []struct {
	name     string
	existing string
	want     string   // with @@ for addedText
	indent   string   // of addedText
	rules    []string // the first key=value of each rule in the result
	cut      string   // what Merge removes from existing, if anything
}{
	{
		name:     "end of file",
		existing: "version: 1\nrules:\n  - allow: tcp:a.test:443\n",
		want:     "version: 1\nrules:\n  - allow: tcp:a.test:443\n@@",
		indent:   "  ",
		rules:    []string{"allow=tcp:a.test:443"},
	},
	{
		name: "last item with several keys, then network",
		existing: `# my policy
version: 1
default: deny  # strict
rules:
  # web
  - allow: tcp:a.test:443
  - deny: udp:*:53
    errno: EPERM  # no DNS
    family: inet
network:
  hosts:
    a.test: 10.0.0.1
`,
		want: `# my policy
version: 1
default: deny  # strict
rules:
  # web
  - allow: tcp:a.test:443
  - deny: udp:*:53
    errno: EPERM  # no DNS
    family: inet
@@network:
  hosts:
    a.test: 10.0.0.1
`,
		indent: "  ",
		rules:  []string{"allow=tcp:a.test:443", "deny=udp:*:53"},
	},
	{
		name: "trailing comments",
		existing: `version: 1
rules:
  - allow: tcp:a.test:443  # the API
    # its mirror, for later:
  # - allow: tcp:b.test:443

# The network
network:
  hosts: {}
`,
		want: `version: 1
rules:
  - allow: tcp:a.test:443  # the API
    # its mirror, for later:
  # - allow: tcp:b.test:443
@@
# The network
network:
  hosts: {}
`,
		indent: "  ",
		rules:  []string{"allow=tcp:a.test:443"},
	},
	{
		name:     "dashes at the keys' column",
		existing: "rules:\n- allow: '*'\n  family: other\n# about the network\nnetwork: {}\n",
		want:     "rules:\n- allow: '*'\n  family: other\n@@# about the network\nnetwork: {}\n",
		indent:   "",
		rules:    []string{"allow=*"},
	},
	{
		name:     "dashes at the keys' column, then a key",
		existing: "rules:\n- allow: tcp:a.test:443\nversion: 1\n",
		want:     "rules:\n- allow: tcp:a.test:443\n@@version: 1\n",
		indent:   "",
		rules:    []string{"allow=tcp:a.test:443"},
	},
	{
		name:     "indented by four",
		existing: "version: 1\nrules:\n    - allow: tcp:a.test:443\n      family: inet\ndefault: deny\n",
		want:     "version: 1\nrules:\n    - allow: tcp:a.test:443\n      family: inet\n@@default: deny\n",
		indent:   "    ",
		rules:    []string{"allow=tcp:a.test:443"},
	},
	{
		name:     "item starting on the line after its dash",
		existing: "rules:\n  -\n    allow: tcp:a.test:443\n    family: inet\nversion: 1\n",
		want:     "rules:\n  -\n    allow: tcp:a.test:443\n    family: inet\n@@version: 1\n",
		indent:   "  ",
		rules:    []string{"allow=tcp:a.test:443"},
	},
	{
		name:     "block scalar in the last item",
		existing: "rules:\n  - unreachable: tcp:a.test:443\n    reason: |\n      line one\n\n      line three\nversion: 1\n",
		want:     "rules:\n  - unreachable: tcp:a.test:443\n    reason: |\n      line one\n\n      line three\n@@version: 1\n",
		indent:   "  ",
		rules:    []string{"unreachable=tcp:a.test:443"},
	},
	{
		name:     "flow mapping item over two lines",
		existing: "rules:\n  - {allow: tcp:a.test:443,\n     family: inet}\nversion: 1\n",
		want:     "rules:\n  - {allow: tcp:a.test:443,\n     family: inet}\n@@version: 1\n",
		indent:   "  ",
		rules:    []string{"allow=tcp:a.test:443"},
	},
	{
		name:     "no final newline",
		existing: "rules:\n  - allow: tcp:a.test:443",
		want:     "rules:\n  - allow: tcp:a.test:443\n@@",
		indent:   "  ",
		rules:    []string{"allow=tcp:a.test:443"},
	},
	{
		name:     "document markers",
		existing: "%YAML 1.1\n---\nrules:\n  - allow: tcp:a.test:443\n...\n",
		want:     "%YAML 1.1\n---\nrules:\n  - allow: tcp:a.test:443\n@@...\n",
		indent:   "  ",
		rules:    []string{"allow=tcp:a.test:443"},
	},
	{
		name:     "anchored list",
		existing: "rules: &r\n  - allow: tcp:a.test:443\nversion: 1\n",
		want:     "rules: &r\n  - allow: tcp:a.test:443\n@@version: 1\n",
		indent:   "  ",
		rules:    []string{"allow=tcp:a.test:443"},
	},
	{
		name:     "CRLF",
		existing: "version: 1\r\nrules:\r\n  - allow: tcp:a.test:443\r\nnetwork: {}\r\n",
		want:     "version: 1\r\nrules:\r\n  - allow: tcp:a.test:443\r\n@@network: {}\r\n",
		indent:   "  ",
		rules:    []string{"allow=tcp:a.test:443"},
	},
	{
		name:     "no rules key",
		existing: "# mine\nversion: 1\ndefault: deny  # strict\n",
		want:     "# mine\nversion: 1\ndefault: deny  # strict\nrules:\n@@",
		indent:   "  ",
	},
	{
		name:     "no rules key, no final newline",
		existing: "version: 1\ndefault: deny",
		want:     "version: 1\ndefault: deny\nrules:\n@@",
		indent:   "  ",
	},
	{
		name:     "empty file",
		existing: "",
		want:     "rules:\n@@",
		indent:   "  ",
	},
	{
		name:     "comments only",
		existing: "# nothing yet\n",
		want:     "# nothing yet\nrules:\n@@",
		indent:   "  ",
	},
	{
		name:     "empty flow list",
		existing: "version: 1\nrules: []  # none yet\nnetwork: {}\n",
		want:     "version: 1\nrules:  # none yet\n@@network: {}\n",
		indent:   "  ",
		cut:      " []",
	},
	{
		name:     "empty flow list, last line",
		existing: "version: 1\nrules: [ ]",
		want:     "version: 1\nrules:\n@@",
		indent:   "  ",
		cut:      " [ ]",
	},
	{
		name:     "null",
		existing: "version: 1\nrules:\nnetwork: {}\n",
		want:     "version: 1\nrules:\n@@network: {}\n",
		indent:   "  ",
	},
	{
		name:     "null with a comment",
		existing: "version: 1\nrules:  # to do\n  # really\nnetwork: {}\n",
		want:     "version: 1\nrules:  # to do\n@@  # really\nnetwork: {}\n",
		indent:   "  ",
	},
	{
		name:     "tilde",
		existing: "version: 1\nrules: ~\n",
		want:     "version: 1\nrules:\n@@",
		indent:   "  ",
		cut:      " ~",
	},
}

func TestMerge(t *testing.T) {
	for _, tt := range mergeCases {
		t.Run(tt.name, func(t *testing.T) {
			nl := "\n"
			if strings.Contains(tt.existing, "\r\n") {
				nl = "\r\n"
			}
			ins := addedText(tt.indent, nl)
			out, added, err := Merge([]byte(tt.existing), "p.yaml", []Use{newUse}, nil, mergeOpts)
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.Replace(tt.want, "@@", ins, 1); string(out) != want {
				t.Errorf("got\n%s\nwant\n%s", out, want)
			}
			if len(added) != 1 || added[0].Dest != "tcp:new.test:443" {
				t.Errorf("added %+v", added)
			}
			// Every byte of the file is kept: take out what was inserted,
			// and the file (less its empty value) is back.
			at := strings.Index(string(out), ins)
			if at < 0 {
				t.Fatalf("the added lines are not in the output")
			}
			kept := string(out[:at]) + string(out[at+len(ins):])
			old := strings.Replace(tt.existing, tt.cut, "", 1)
			if kept != old && kept != old+"rules:"+nl && kept != old+nl+"rules:"+nl && kept != old+nl {
				t.Errorf("the existing bytes changed:\n%q\nwant\n%q", kept, old)
			}
			if got, want := ruleKeys(t, out), append(append([]string{}, tt.rules...), "allow=tcp:new.test:443"); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("rules parse as %q, want %q", got, want)
			}
		})
	}
}

// ruleKeys parses a policy and returns the first key=value of each rule.
func ruleKeys(t *testing.T, data []byte) []string {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("output does not parse: %v\n%s", err, data)
	}
	top := doc.Content[0]
	var keys []string
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value != "rules" {
			continue
		}
		for _, r := range top.Content[i+1].Content {
			if r.Kind != yaml.MappingNode || len(r.Content) < 2 {
				t.Fatalf("rule at line %d is no mapping", r.Line)
			}
			keys = append(keys, r.Content[0].Value+"="+r.Content[1].Value)
		}
	}
	return keys
}

func TestMergeNothingNew(t *testing.T) {
	files := []string{
		"version: 1\nrules:\n  - allow: tcp:a.test:443\n",
		"rules: [{allow: '*'}]  # a flow list Merge cannot add to\n",
		"# no rules at all",
		"",
	}
	uses := []Use{
		newUse,
		{Kind: Inet, Proto: "tcp", Addr: ap("127.0.0.1:80"), Self: true},
		{Kind: Unix}, // unnamed
	}
	for _, f := range files {
		for name, covered := range map[string]func(Use) bool{
			"all covered": func(Use) bool { return true },
			"new covered": func(u Use) bool { return u.Name == "new.test" },
		} {
			out, added, err := Merge([]byte(f), "p.yaml", uses, covered, mergeOpts)
			if err != nil || !bytes.Equal(out, []byte(f)) || added != nil {
				t.Errorf("%s, %q: got %q, %v, %v; want the file unchanged", name, f, out, added, err)
			}
		}
	}
}

func TestMergeCoveredAndOrder(t *testing.T) {
	existing := "version: 1\nrules:\n  - allow: tcp:a.test:443\n# end\n"
	uses := []Use{
		{Kind: Other, Family: "netlink", Count: 1},
		tcp("10.0.0.1:443", "a.test"), // covered
		{Kind: Unix, Path: "/run/s", Count: 1},
		udp("10.0.0.2:53", ""),
		tcp("10.0.0.3:443", "b.test"),
		tcp("10.0.0.3:443", "b.test"), // the same rule again
		tcp("10.0.0.3:443", "c.test"), // covered
	}
	covered := func(u Use) bool { return u.Name == "a.test" || u.Name == "c.test" }
	out, added, err := Merge([]byte(existing), "p.yaml", uses, covered, Options{Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	var dests []string
	for _, r := range added {
		dests = append(dests, r.Dest)
	}
	want := []string{"tcp:b.test:443", "udp:10.0.0.2:53", "unix:/run/s", "*"}
	if strings.Join(dests, " ") != strings.Join(want, " ") {
		t.Errorf("added %q, want %q", dests, want)
	}
	if added[0].Count != 2 {
		t.Errorf("tcp:b.test:443 counted %d, want 2", added[0].Count)
	}
	wantOut := `version: 1
rules:
  - allow: tcp:a.test:443
  # Added by sandbox learn at 2026-12-01T21:50:00Z
  - allow: tcp:b.test:443  # 2 connects
  - allow: udp:10.0.0.2:53  # 1 connect
  - allow: unix:/run/s  # 1 connect
  - allow: '*'  # 1 connect (netlink)
    family: other
# end
`
	if string(out) != wantOut {
		t.Errorf("got\n%s\nwant\n%s", out, wantOut)
	}
	keys := ruleKeys(t, out)
	if got := strings.Join(keys, " "); got != "allow=tcp:a.test:443 allow=tcp:b.test:443 allow=udp:10.0.0.2:53 allow=unix:/run/s allow=*" {
		t.Errorf("rules parse as %s", got)
	}
	// Merging the same again with the new rules covered changes nothing.
	again, more, err := Merge(out, "p.yaml", uses, func(Use) bool { return true }, Options{Now: t0})
	if err != nil || !bytes.Equal(again, out) || len(more) != 0 {
		t.Errorf("second merge: %v, %v, changed %v", more, err, !bytes.Equal(again, out))
	}
}

var mergeErrorCases = []struct {
	name, existing, want string
}{
	{"syntax", "version: 1\nrules:\n  - allow: a\n b: c\n", "p.yaml:4: expected valid YAML: did not find expected key"},
	{"syntax on line 1", "a: b: c\n", "p.yaml:1: expected valid YAML: mapping values are not allowed"},
	{"scanner error", "version: 1\nrules:\n\t- allow: a\n", "p.yaml:3: expected valid YAML: found character that cannot start any token"},
	{"control character", "version: 1\nrules: \x01\n", "p.yaml:2:8: expected valid YAML: control characters are not allowed"},
	{"invalid UTF-8", "version: 1\n# \xff\n", "p.yaml:2:3: expected valid YAML: invalid leading UTF-8 octet"},
	{"unknown anchor", "version: 1\nrules: *r\n", "p.yaml:2:8: expected valid YAML: unknown anchor 'r' referenced"},
	{"two documents", "version: 1\n---\nversion: 1\n", "p.yaml:2:1: expected a single YAML document"},
	{"a list", "- allow: a\n", "p.yaml:1:1: expected the policy to be a mapping (version:, default:, rules:), found a list"},
	{"a scalar", "\n  hello\n", `p.yaml:2:3: expected the policy to be a mapping (version:, default:, rules:), found the scalar "hello"`},
	{"flow mapping", "{version: 1, rules: []}\n", "p.yaml:1:1: the policy is a flow mapping"},
	{"flow list", "version: 1\nrules: [{allow: a}]\n", "p.yaml:2:8: rules: is a flow list [ ... ]: write it as a block list"},
	{"flow list over lines", "version: 1\nrules: [\n]\n", "p.yaml:2:8: expected rules: [] on one line"},
	{"scalar rules", "rules: tcp:a:1\n", `p.yaml:1:8: expected rules: to be a list of rules, found the scalar "tcp:a:1"`},
	{"mapping rules", "rules:\n  allow: a\n", "p.yaml:2:3: expected rules: to be a list of rules, found a mapping"},
	{"twice", "rules:\n  - allow: a\nrules: []\n", "p.yaml:3:1: rules: appears twice (first on line 1)"},
	{"alias", "x: &r\n  - allow: a\nrules: *r\n", "p.yaml:3:8: rules: is an alias (*r)"},
	// Kept trailing newlines belong to the scalar: inserting before
	// them would change it, which the check after the edit catches.
	{"unsafe", "rules:\n  - allow: a\n    reason: |+\n      x\n\nnetwork: 1\n", "p.yaml:4:1: cannot add the learned rules here safely (an existing rule would change)"},
}

func TestMergeErrors(t *testing.T) {
	for _, tt := range mergeErrorCases {
		t.Run(tt.name, func(t *testing.T) {
			out, added, err := Merge([]byte(tt.existing), "p.yaml", []Use{newUse}, nil, mergeOpts)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("got error %v, want %q...", err, tt.want)
			}
			if out != nil || added != nil {
				t.Errorf("an error returned %q, %v", out, added)
			}
		})
	}
}

// TestMergeable: what Merge would refuse once PROGRAM ran is found before,
// with the same error, even when nothing was learned (Merge with nothing
// new returns any file unchanged, a flow list too).
func TestMergeable(t *testing.T) {
	for _, tt := range mergeCases {
		if err := Mergeable([]byte(tt.existing), "p.yaml"); err != nil {
			t.Errorf("%s: %v, want nil", tt.name, err)
		}
	}
	for _, f := range []string{"", "# no rules at all", "version: 1\n", "rules:\n", "rules: []\n", "rules: ~\n"} {
		if err := Mergeable([]byte(f), "p.yaml"); err != nil {
			t.Errorf("%q: %v, want nil", f, err)
		}
	}
	for _, tt := range mergeErrorCases {
		t.Run(tt.name, func(t *testing.T) {
			err := Mergeable([]byte(tt.existing), "p.yaml")
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q...", err, tt.want)
			}
			_, _, merr := Merge([]byte(tt.existing), "p.yaml", []Use{newUse}, nil, mergeOpts)
			if merr == nil || merr.Error() != err.Error() {
				t.Errorf("Mergeable said %q, Merge %q", err, merr)
			}
		})
	}
	// The case of the flow list: with nothing new Merge has nothing to
	// refuse, but Mergeable refuses it all the same.
	flow := []byte("version: 1\nrules: [{allow: tcp:a.test:443}]\n")
	if out, _, err := Merge(flow, "p.yaml", nil, nil, mergeOpts); err != nil || !bytes.Equal(out, flow) {
		t.Fatalf("Merge with nothing: %q, %v", out, err)
	}
	if err := Mergeable(flow, "p.yaml"); err == nil || !strings.Contains(err.Error(), "p.yaml:2:8: rules: is a flow list") {
		t.Errorf("Mergeable: %v", err)
	}
}

func TestKeyLine(t *testing.T) {
	for _, tt := range []struct {
		data, key string
		want      int
	}{
		{"# c\nversion: 1\ndefault: deny\nrules: []\n", "default", 3},
		{"version: 1\nrules:\n  - default: x\n", "default", 0},
		{"version: 1\n", "version", 1},
		{"", "default", 0},
		{"- a\n", "default", 0},
		{"a: b: c\n", "a", 0},
	} {
		if got := KeyLine([]byte(tt.data), tt.key); got != tt.want {
			t.Errorf("KeyLine(%q, %q) = %d, want %d", tt.data, tt.key, got, tt.want)
		}
	}
}
