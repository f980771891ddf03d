package sentry

import (
	"encoding/binary"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func llSockaddr4(port uint16, n int) []byte {
	b := make([]byte, n)
	binary.NativeEndian.PutUint16(b, unix.AF_INET)
	if n >= 4 {
		binary.BigEndian.PutUint16(b[2:], port)
	}
	return b
}

func llSockaddr6(port uint16, n int) []byte {
	b := make([]byte, n)
	binary.NativeEndian.PutUint16(b, unix.AF_INET6)
	binary.BigEndian.PutUint16(b[2:], port)
	return b
}

func llPush(parent *llDomain, l *llLayer) *llDomain {
	d := &llDomain{parent: parent, layer: l, depth: 1}
	if parent != nil {
		d.depth = parent.depth + 1
	}
	return d
}

// The order and errnos of current_check_access_socket, as the conformance
// probe landlock.c shows them natively.
func TestLandlockCheckConnect(t *testing.T) {
	one := llPush(nil, &llLayer{handledNet: llAccessConnectTCP, connect: map[uint16]bool{80: true, 81: true}})
	two := llPush(one, &llLayer{handledNet: llAccessConnectTCP, connect: map[uint16]bool{80: true, 82: true}})
	bindOnly := llPush(two, &llLayer{handledNet: llAccessBindTCP, connect: map[uint16]bool{}})
	unspec := make([]byte, 16) // AF_UNSPEC is 0
	cases := []struct {
		name   string
		dom    *llDomain
		family int
		addr   []byte
		want   unix.Errno
	}{
		{"allowed", one, unix.AF_INET, llSockaddr4(80, 16), 0},
		{"denied", one, unix.AF_INET, llSockaddr4(82, 16), unix.EACCES},
		{"port 0", one, unix.AF_INET, llSockaddr4(0, 16), unix.EACCES},
		{"nested: both allow", two, unix.AF_INET, llSockaddr4(80, 16), 0},
		{"nested: outer denies", two, unix.AF_INET, llSockaddr4(82, 16), unix.EACCES},
		{"nested: inner denies", two, unix.AF_INET, llSockaddr4(81, 16), unix.EACCES},
		{"a bind-only layer adds nothing", bindOnly, unix.AF_INET, llSockaddr4(80, 16), 0},
		{"no address", one, unix.AF_INET, nil, unix.EINVAL},
		{"short v4", one, unix.AF_INET, llSockaddr4(82, 8), unix.EINVAL},
		{"short v6", one, unix.AF_INET6, llSockaddr6(82, 20), unix.EINVAL},
		{"rfc2133 v6", one, unix.AF_INET6, llSockaddr6(82, 24), unix.EACCES},
		{"v6 address on v4 socket", one, unix.AF_INET, llSockaddr6(80, 28), unix.EINVAL},
		{"v4 address on v6 socket", one, unix.AF_INET6, llSockaddr4(80, 16), unix.EINVAL},
		{"AF_UNSPEC short", one, unix.AF_INET, unspec[:2], 0},
		{"AF_UNSPEC", one, unix.AF_INET, unspec, 0},
		{"other family", one, unix.AF_INET, []byte{unix.AF_UNIX, 0, 0, 0}, 0},
		{"no layer handles connect", llPush(nil, &llLayer{handledNet: llAccessBindTCP}), unix.AF_INET, nil, 0},
	}
	for _, c := range cases {
		if got := llCheckConnect(c.dom, c.family, c.addr); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

// domain_is_scoped, level by level.
func TestLandlockScoped(t *testing.T) {
	scoped := func() *llLayer { return &llLayer{scoped: llScopeAbstractUnix} }
	open := func() *llLayer { return &llLayer{} }
	p := llPush(nil, scoped())
	child := llPush(p, scoped())
	sibling := llPush(p, scoped())
	openChild := llPush(p, open())
	unscoped := llPush(nil, open())
	cases := []struct {
		name           string
		client, server *llDomain
		want           bool
	}{
		{"same domain", p, p, false},
		{"server nested in the client's", p, child, false},
		{"server in the parent domain", child, p, true},
		{"server in a sibling domain", child, sibling, true},
		{"server outside every domain", p, nil, true},
		{"unscoped client", unscoped, nil, false},
		{"unscoped inner layer, scoped outer: nested server", openChild, p, false},
		{"unscoped inner layer, scoped outer: outside server", openChild, nil, true},
		{"no client domain", nil, p, false},
	}
	for _, c := range cases {
		if got := llScoped(c.client, c.server); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

// Without kcmp, a ruleset is found by its number in the caller's process
// or an ancestor (a forked child inherits the table).
func TestLandlockRulesetByNumber(t *testing.T) {
	l := newLandlockState()
	l.self, l.noKcmp = -1, true
	mine := &llRuleset{owner: os.Getpid(), num: 5}
	parents := &llRuleset{owner: os.Getppid(), num: 6}
	l.rulesets = []*llRuleset{parents, mine}
	tid := uint32(unix.Gettid())
	if got := l.rulesetOf(tid, 5, -1); got != mine {
		t.Errorf("own number: got %p, want %p", got, mine)
	}
	if got := l.rulesetOf(tid, 6, -1); got != parents {
		t.Errorf("inherited number: got %p, want %p", got, parents)
	}
	if got := l.rulesetOf(tid, 7, -1); got != nil {
		t.Errorf("unknown number: got %p, want nil", got)
	}
}
