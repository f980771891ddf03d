package shell

import "testing"

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"curl", "curl"},
		{"https://web.test:8443/a,b=c@d%e+f", "https://web.test:8443/a,b=c@d%e+f"},
		{"", "''"},
		{"a b", "'a b'"},
		{"it's", `'it'\''s'`},
		{"$HOME", "'$HOME'"},
		{"~", "'~'"},
		{"a\nb", `$'a\nb'`},
		{"a'\\\t\x01\xff", `$'a\'\\\t\x01\xff'`},
		{"héllo", "'héllo'"},
	}
	for _, tt := range tests {
		if got := Quote(tt.in); got != tt.want {
			t.Errorf("Quote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestJoin(t *testing.T) {
	for _, c := range []struct {
		argv []string
		want string
	}{
		{[]string{"/opt/bin/client", "--once"}, "/opt/bin/client --once"},
		{[]string{"echo", "", "it's", "a b", "*.txt", "a\nb", "x=1,y@z"}, `echo '' 'it'\''s' 'a b' '*.txt' $'a\nb' x=1,y@z`},
		{[]string{"printf", "\x01\xff"}, `printf $'\x01\xff'`},
	} {
		if got := Join(c.argv); got != c.want {
			t.Errorf("Join(%q) = %s, want %s", c.argv, got, c.want)
		}
	}
}
