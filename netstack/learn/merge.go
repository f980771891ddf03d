package learn

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
)

// Merge adds to an existing policy file the rules of uses that are new,
// keeping the file's bytes, comments and order otherwise exactly as they
// were. covered(u) reports whether u needs no rule added: the existing
// policy allows it, or one of its rules decides it otherwise, which a rule
// added after it could never change (the first matching rule wins: the
// caller says so, rather than append a rule that can never match). Uses it
// covers (and Self uses) give no rule, and the default is never changed. It returns the new file and the rules it added, in the order
// written; with nothing to add, existing itself. Errors read
// PATH:LINE:COL: message (PATH:LINE: for YAML syntax errors, whose column
// yaml.v3 does not report).
func Merge(existing []byte, path string, uses []Use, covered func(Use) bool, o Options) (out []byte, added []Rule, err error) {
	doc, err := parseOne(existing, path)
	if err != nil {
		return nil, nil, err
	}
	top, err := topMapping(doc, path)
	if err != nil {
		return nil, nil, err
	}
	var fresh []Use
	for _, u := range uses {
		if !u.Self && (covered == nil || !covered(u)) {
			fresh = append(fresh, u)
		}
	}
	added = Rules(fresh, o)
	if len(added) == 0 {
		return existing, nil, nil
	}
	f := newFile(existing)
	ins, err := f.locate(top, path)
	if err != nil {
		return nil, nil, err
	}
	now := o.now()
	var text strings.Builder
	if ins.newline {
		text.WriteString(f.nl)
	}
	if ins.head != "" {
		text.WriteString(ins.head + f.nl)
	}
	text.WriteString(ins.indent + "# Added by sandbox learn at " + now.Format(time.RFC3339) + from(o.Command) + f.nl)
	for _, r := range added {
		text.WriteString(ruleText(r, ins.indent, now.Location(), f.nl))
	}
	out = make([]byte, 0, len(existing)+text.Len())
	out = append(out, existing[:ins.cut[0]]...)
	out = append(out, existing[ins.cut[1]:ins.at]...)
	out = append(out, text.String()...)
	out = append(out, existing[ins.at:]...)
	// The cases above cover what policies look like; YAML has more. Rather
	// than a file that means something else, refuse.
	if why := check(out, top, added); why != "" {
		return nil, nil, fmt.Errorf("%s:%d:%d: cannot add the learned rules here safely (%s): write rules: as a block list, one \"- allow: DEST\" per line, and run sandbox learn again",
			path, ins.line, ins.col, why)
	}
	return out, added, nil
}

// Mergeable returns the error Merge would return for existing whatever
// was learned, or nil: check it before PROGRAM runs, so that nothing
// learned is lost to a file that cannot take it. It adds, on a copy, a
// rule of each shape Merge writes (one line, and one with a family: line).
func Mergeable(existing []byte, path string) error {
	probe := []Use{
		{Kind: Inet, Proto: "tcp", Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, 1}), 1)},
		{Kind: Other, Family: "netlink"},
	}
	_, _, err := Merge(existing, path, probe, nil, Options{Now: time.Unix(0, 0).UTC()})
	return err
}

// KeyLine is the line of the top-level key of the policy in data, 0 if it
// has none (or data is no policy Merge could read).
func KeyLine(data []byte, key string) int {
	doc, err := parseOne(data, "")
	if err != nil {
		return 0
	}
	top, err := topMapping(doc, "")
	if err != nil || top == nil {
		return 0
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		if k := top.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return k.Line
		}
	}
	return 0
}

// parseOne parses the single YAML document of data; nil if there is none.
func parseOne(data []byte, path string) (doc *yaml.Node, err error) {
	defer func() {
		// Should the parser panic on some odd input, a corrupt policy
		// must still be an error, never a crash of the learner.
		if r := recover(); r != nil {
			doc, err = nil, fmt.Errorf("%s: expected valid YAML: the YAML parser failed: %v", path, r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var d yaml.Node
	if err := dec.Decode(&d); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, syntaxError(data, path, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, syntaxError(data, path, err)
		}
		return nil, fmt.Errorf("%s:%d:%d: expected a single YAML document, found another", path, extra.Line, extra.Column)
	}
	return &d, nil
}

var (
	yamlLine      = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	unknownAnchor = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)
)

// parserProblems are yaml.v3's parser (not scanner) errors: it numbers
// their lines from 0, and those of the scanner from 1.
var parserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// syntaxError places a yaml.v3 error. yaml.v3 gives at most a line, and
// none for a problem on the first line; bad characters and unknown anchors
// are found here instead, with their column.
func syntaxError(data []byte, path string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		if parserProblems[m[2]] {
			line++
		}
		return fmt.Errorf("%s:%d: expected valid YAML: %s", path, line, m[2])
	}
	if line, col, ok := badChar(data); ok {
		return fmt.Errorf("%s:%d:%d: expected valid YAML: %s", path, line, col, msg)
	}
	if m := unknownAnchor.FindStringSubmatch(err.Error()); m != nil {
		if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
			line, col := position(data, i)
			return fmt.Errorf("%s:%d:%d: expected valid YAML: %s", path, line, col, msg)
		}
	}
	return fmt.Errorf("%s:1: expected valid YAML: %s", path, msg)
}

// position is the line and column (in characters) of offset i.
func position(data []byte, i int) (line, col int) {
	before := data[:i]
	line = bytes.Count(before, []byte("\n")) + 1
	return line, utf8.RuneCount(before[bytes.LastIndexByte(before, '\n')+1:]) + 1
}

// badChar finds the first character YAML does not allow: invalid UTF-8,
// or one outside YAML's printable set.
func badChar(data []byte) (line, col int, ok bool) {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n == 1 || !yamlPrintable(r) {
			line, col = position(data, i)
			return line, col, true
		}
		i += n
	}
	return 0, 0, false
}

func yamlPrintable(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || 0x20 <= r && r <= 0x7e || r == 0x85 ||
		0xa0 <= r && r <= 0xd7ff || 0xe000 <= r && r <= 0xfffd || 0x10000 <= r && r <= 0x10ffff
}

// topMapping is the document's top-level mapping; nil for an empty or null
// document, to which rules: is simply appended.
func topMapping(doc *yaml.Node, path string) (*yaml.Node, error) {
	if doc == nil || doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil
	}
	n := doc.Content[0]
	switch {
	case n.Kind == yaml.MappingNode:
		return n, nil
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null":
		return nil, nil
	}
	return nil, fmt.Errorf("%s:%d:%d: expected the policy to be a mapping (version:, default:, rules:), found %s", path, n.Line, n.Column, kindName(n))
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.AliasNode:
		return "an alias"
	}
	return "the scalar " + strconv.Quote(n.Value)
}

// file is the existing file split in lines.
type file struct {
	data  []byte
	start []int  // byte offset of each line; line n (1-based) starts at start[n-1]
	nl    string // the file's line ending, for the lines added
}

func newFile(data []byte) *file {
	f := &file{data: data, start: []int{0}, nl: "\n"}
	for i, c := range data {
		if c == '\n' {
			f.start = append(f.start, i+1)
		}
	}
	if i := bytes.IndexByte(data, '\n'); i > 0 && data[i-1] == '\r' {
		f.nl = "\r\n"
	}
	return f
}

func (f *file) lines() int { return len(f.start) }

// text is line n without its line ending; "" outside the file.
func (f *file) text(n int) string {
	if n < 1 || n > len(f.start) {
		return ""
	}
	end := len(f.data)
	if n < len(f.start) {
		end = f.start[n] - 1
	}
	return strings.TrimSuffix(string(f.data[f.start[n-1]:end]), "\r")
}

// end is the offset just after line n and its line ending, and whether it
// has one.
func (f *file) end(n int) (int, bool) {
	if n < len(f.start) {
		return f.start[n], true
	}
	return len(f.data), len(f.data) > 0 && f.data[len(f.data)-1] == '\n'
}

// offset is the byte offset of line n, column col (yaml.v3 counts columns
// in characters); -1 if there is no such place.
func (f *file) offset(n, col int) int {
	if n < 1 || n > len(f.start) || col < 1 {
		return -1
	}
	t := f.text(n)
	c := 1
	for i := range t {
		if c == col {
			return f.start[n-1] + i
		}
		c++
	}
	if c == col {
		return f.start[n-1] + len(t)
	}
	return -1
}

// insertion says where and how the new items go.
type insertion struct {
	at        int    // offset the text goes in at
	cut       [2]int // bytes removed before at: an empty rules value
	newline   bool   // the line before at has no line ending yet
	head      string // the rules: line, when there is none
	indent    string // of the items
	line, col int    // what an error points at
}

func (f *file) locate(top *yaml.Node, path string) (insertion, error) {
	// Without rules:, it and the items go at the end of the file.
	ins := insertion{at: len(f.data), indent: "  ", head: "rules:", line: 1, col: 1}
	ins.cut = [2]int{ins.at, ins.at}
	ins.newline = len(f.data) > 0 && f.data[len(f.data)-1] != '\n'
	if top == nil {
		return ins, nil
	}
	ins.line, ins.col = top.Line, top.Column
	if top.Style&yaml.FlowStyle != 0 {
		return ins, fmt.Errorf("%s:%d:%d: the policy is a flow mapping { }: write it as a block mapping, one key per line, so that sandbox learn can add rules to it", path, top.Line, top.Column)
	}
	keyIndent := strings.Repeat(" ", top.Column-1)
	var key, val *yaml.Node
	for i := 0; i+1 < len(top.Content); i += 2 {
		k := top.Content[i]
		if k.Kind != yaml.ScalarNode || k.Value != "rules" {
			continue
		}
		if key != nil {
			return ins, fmt.Errorf("%s:%d:%d: rules: appears twice (first on line %d): keep one", path, k.Line, k.Column, key.Line)
		}
		key, val = k, top.Content[i+1]
	}
	ins.indent = keyIndent + "  "
	if key == nil {
		ins.head = keyIndent + "rules:"
		return ins, nil
	}
	ins.head, ins.line, ins.col = "", val.Line, val.Column
	switch {
	case val.Kind == yaml.SequenceNode && val.Style&yaml.FlowStyle == 0 && len(val.Content) > 0:
		return f.afterBlock(ins, top, val), nil
	case val.Kind == yaml.SequenceNode && val.Style&yaml.FlowStyle != 0 && len(val.Content) == 0,
		val.Kind == yaml.ScalarNode && val.ShortTag() == "!!null" && val.Value != "":
		// An empty [] or ~: remove it, the items go on the next lines.
		tok := val.Value
		if val.Kind == yaml.SequenceNode {
			tok = "[]"
		}
		if ok := f.cutValue(&ins, val, tok); !ok {
			return ins, fmt.Errorf("%s:%d:%d: expected rules: %s on one line: write rules: alone on its line, so that sandbox learn can add rules after it", path, val.Line, val.Column, tok)
		}
		return ins, nil
	case val.Kind == yaml.ScalarNode && val.ShortTag() == "!!null":
		// rules: with nothing after it; yaml.v3 places the null just after
		// the colon.
		var hasNL bool
		ins.at, hasNL = f.end(val.Line)
		ins.newline = !hasNL
		ins.cut = [2]int{ins.at, ins.at}
		return ins, nil
	case val.Kind == yaml.SequenceNode:
		return ins, fmt.Errorf("%s:%d:%d: rules: is a flow list [ ... ]: write it as a block list, one \"- allow: DEST\" per line, so that sandbox learn can add rules to it", path, val.Line, val.Column)
	case val.Kind == yaml.AliasNode:
		return ins, fmt.Errorf("%s:%d:%d: rules: is an alias (*%s): write the rules out, so that sandbox learn can add rules to them", path, val.Line, val.Column, val.Value)
	}
	return ins, fmt.Errorf("%s:%d:%d: expected rules: to be a list of rules, found %s", path, val.Line, val.Column, kindName(val))
}

// cutValue removes the empty value tok (and the blanks before it) from its
// line, and inserts after that line.
func (f *file) cutValue(ins *insertion, val *yaml.Node, tok string) bool {
	off := f.offset(val.Line, val.Column)
	if off < 0 {
		return false
	}
	end := off
	if tok == "[]" {
		if end >= len(f.data) || f.data[end] != '[' {
			return false
		}
		end++
		for end < len(f.data) && (f.data[end] == ' ' || f.data[end] == '\t') {
			end++
		}
		if end >= len(f.data) || f.data[end] != ']' {
			return false
		}
		end++
	} else {
		if !bytes.HasPrefix(f.data[off:], []byte(tok)) {
			return false
		}
		end += len(tok)
	}
	lineStart := f.start[val.Line-1]
	begin := off
	for begin > lineStart && (f.data[begin-1] == ' ' || f.data[begin-1] == '\t') {
		begin--
	}
	ins.cut = [2]int{begin, end}
	var hasNL bool
	ins.at, hasNL = f.end(val.Line)
	ins.newline = !hasNL
	return true
}

// afterBlock places the items after the last line of the block list seq,
// the value of a key of top. That block holds the last item's first line
// and then every line indented past the dashes, and the comments indented
// past the keys of top; it ends at the first other line (a key of top, a
// comment at the keys' column, a document marker). Blank lines at its end
// stay after the new items.
func (f *file) afterBlock(ins insertion, top, seq *yaml.Node) insertion {
	dash := seq.Column
	if t := f.text(seq.Line); !onlySpacesThenDash(t, seq.Column) {
		// Not at a dash (a tag or anchor first): take the first item's line.
		t = f.text(seq.Content[0].Line)
		if rest := strings.TrimLeft(t, " "); strings.HasPrefix(rest, "-") {
			dash = len(t) - len(rest) + 1
		} else {
			dash = top.Column + 2
		}
	}
	ins.indent = strings.Repeat(" ", dash-1)
	last := seq.Content[len(seq.Content)-1].Line
scan:
	for n := last + 1; n <= f.lines(); n++ {
		t := f.text(n)
		rest := strings.TrimLeft(t, " \t")
		switch {
		case rest == "":
			continue
		case rest[0] == '#':
			if len(t)-len(rest) < top.Column {
				break scan // at the keys' column: a comment on what follows
			}
		case len(t)-len(strings.TrimLeft(t, " ")) < dash:
			break scan
		}
		last = n
	}
	var hasNL bool
	ins.at, hasNL = f.end(last)
	ins.newline = !hasNL
	ins.cut = [2]int{ins.at, ins.at}
	ins.line, ins.col = last, 1
	return ins
}

// onlySpacesThenDash reports whether line t has a '-' at column col, after
// spaces only.
func onlySpacesThenDash(t string, col int) bool {
	return col >= 1 && col <= len(t) && t[col-1] == '-' && strings.TrimLeft(t[:col-1], " ") == ""
}

// check parses out and returns why it is not the old document with added
// at the end of its rules, or "".
func check(out []byte, top *yaml.Node, added []Rule) string {
	doc, err := parseOne(out, "")
	if err != nil {
		return "the result would not be valid YAML"
	}
	ntop, err := topMapping(doc, "")
	if err != nil || ntop == nil {
		return "the result would not be a mapping"
	}
	var old []*yaml.Node
	if top != nil {
		old = top.Content
	}
	var oldRules []*yaml.Node
	hadRules := false
	for i := 0; i+1 < len(old); i += 2 {
		if old[i].Kind == yaml.ScalarNode && old[i].Value == "rules" {
			hadRules = true
			if old[i+1].Kind == yaml.SequenceNode {
				oldRules = old[i+1].Content
			}
		}
	}
	want := len(old)
	if !hadRules {
		want += 2
	}
	if len(ntop.Content) != want {
		return "the keys of the policy would change"
	}
	for i := 0; i+1 < len(ntop.Content); i += 2 {
		k, v := ntop.Content[i], ntop.Content[i+1]
		if i < len(old) && !same(k, old[i]) {
			return "the keys of the policy would change"
		}
		if k.Kind != yaml.ScalarNode || k.Value != "rules" {
			if !same(v, old[i+1]) {
				return "the value of " + k.Value + ": would change"
			}
			continue
		}
		if v.Kind != yaml.SequenceNode || v.ShortTag() != "!!seq" || len(v.Content) != len(oldRules)+len(added) {
			return "the rules would not be the old ones and the new ones"
		}
		for j, o := range oldRules {
			if !same(v.Content[j], o) {
				return "an existing rule would change"
			}
		}
		for j, r := range added {
			if !isRule(v.Content[len(oldRules)+j], r) {
				return "a new rule would not read as written"
			}
		}
	}
	return ""
}

// same reports whether a and b mean the same, ignoring places, styles and
// comments. Aliases compare by name, so nothing is expanded.
func same(a, b *yaml.Node) bool {
	if a.Kind != b.Kind || a.ShortTag() != b.ShortTag() || a.Value != b.Value || a.Anchor != b.Anchor || len(a.Content) != len(b.Content) {
		return false
	}
	for i := range a.Content {
		if !same(a.Content[i], b.Content[i]) {
			return false
		}
	}
	return true
}

func isRule(n *yaml.Node, r Rule) bool {
	want := []string{"allow", r.Dest}
	if r.Family != "" {
		want = append(want, "family", r.Family)
	}
	if n.Kind != yaml.MappingNode || len(n.Content) != len(want) {
		return false
	}
	for i, w := range want {
		if c := n.Content[i]; c.Kind != yaml.ScalarNode || c.Value != w {
			return false
		}
	}
	return true
}
