// Package shell quotes words as a POSIX shell reads them, for the command
// lines the sandbox prints (suggested flags, learned policies' headers,
// matrix reports).
package shell

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Join quotes args for a POSIX shell and joins them with spaces.
func Join(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}

// Quote is s as one shell word: as it is when it needs no quoting, in
// single quotes when it is printable, else in bash's $'...' (for bytes a
// line cannot hold).
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	safe, printable := true, utf8.ValidString(s)
	for _, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("-_./:=@%+,", r)) {
			safe = false
		}
		if !unicode.IsPrint(r) {
			printable = false
		}
	}
	switch {
	case safe:
		return s
	case printable:
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	var b strings.Builder
	b.WriteString("$'")
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\'' || r == '\\':
			b.WriteString(`\` + string(r))
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == utf8.RuneError && n == 1, !unicode.IsPrint(r):
			for _, c := range []byte(s[i : i+n]) {
				fmt.Fprintf(&b, `\x%02x`, c)
			}
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	b.WriteString("'")
	return b.String()
}
