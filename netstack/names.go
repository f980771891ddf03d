package netstack

import (
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Names remembers, for each address, the host names the program's own
// lookups returned it for: DNS answers that the sentry's forwarder saw on
// their way to the program, each until its TTL plus a grace period runs out,
// and the hosts file the program started with. A rule by name matches an
// address through these names (Request.Names), so that it follows what a
// CDN or a cloud API hands the program at run time.
//
// Principle: an answer names only the addresses on the chain from its own
// question. A resolver's answer to "a.example" that also carries a record
// for "b.example" (in a CNAME chain that does not lead there, or in the
// additional section) names nothing with b.example: otherwise any answer
// the program provoked could claim any address for any allowed name.
//
// Safe for concurrent use. Lookups take a read lock and allocate nothing
// when every remembered name is still valid.
type Names struct {
	grace time.Duration
	max   int
	swept int64 // when the last full sweep ran (unix ns): at most one a second

	mu    sync.RWMutex
	addrs map[netip.Addr]*nameRec
	hosts map[netip.Addr]string // names joined by spaces
	count atomic.Int32          // len(addrs)+len(hosts), for the empty check
}

// nameRec is one address's DNS names, newest first; joined is them and the
// hosts file's names as Request.Names spells them, valid until soonest.
type nameRec struct {
	es      []nameEntry
	joined  string
	soonest int64
}

type nameEntry struct {
	name  string
	until int64 // unix nanoseconds
}

// DefaultNameGrace is how long a name keeps covering an address after the
// answer's TTL ran out: programs (and their resolvers' caches) keep using an
// address for a while, as harden-runner's grace period allows for.
const DefaultNameGrace = 30 * time.Second

// maxNamedAddrs bounds the table: a program that resolves without end must
// not grow the supervisor without end. Past it, expired entries are swept,
// and if none is, new addresses are not remembered (their rules by name then
// match only through load-time resolution: fail closed).
const maxNamedAddrs = 1 << 16

// maxNamesPerAddr bounds the names one address keeps (the newest): a zone
// with a wildcard can give one address any number of names.
const maxNamesPerAddr = 32

// maxTTL is the largest TTL RFC 2181 allows; a larger one counts as 0.
const maxTTL = 1<<31 - 1

// NewNames returns an empty table whose names stay valid grace past their
// TTL.
func NewNames(grace time.Duration) *Names {
	return &Names{grace: grace, max: maxNamedAddrs, addrs: map[netip.Addr]*nameRec{}, hosts: map[netip.Addr]string{}}
}

// RR is one answer record as the forwarder decoded it: a CNAME (Target) or
// an address (Addr, from A or AAAA).
type RR struct {
	Name   string
	TTL    uint32
	Target string
	Addr   netip.Addr
}

// NameOf normalizes a DNS name for matching: lower case, no trailing dot.
func NameOf(s string) string {
	s = strings.TrimSuffix(s, ".")
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// Observe records the answer to a lookup of question received at now. It
// returns, for each address named, the chain of names it was reached
// through (the question first), for the log.
func (n *Names) Observe(now time.Time, question string, rrs []RR) map[netip.Addr][]string {
	q := NameOf(question)
	if !plainName(q) {
		return nil // a name no rule can spell names nothing
	}
	cname := map[string]RR{}
	for _, rr := range rrs {
		if rr.Target != "" {
			cname[NameOf(rr.Name)] = rr
		}
	}
	// Walk the chain from the question: each name on it, and the smallest
	// TTL so far (an address is only as fresh as the oldest link to it).
	type link struct {
		name string
		ttl  uint32
	}
	chain := []link{{q, ^uint32(0)}}
	seen := map[string]bool{q: true}
	for {
		last := chain[len(chain)-1]
		rr, ok := cname[last.name]
		if !ok {
			break
		}
		t := NameOf(rr.Target)
		if seen[t] || len(chain) > 16 || !plainName(t) { // a loop, a chain no resolver follows, a name no rule spells
			break
		}
		seen[t] = true
		chain = append(chain, link{t, min(last.ttl, ttlOf(rr.TTL))})
	}
	out := map[netip.Addr][]string{}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, rr := range rrs {
		if !rr.Addr.IsValid() {
			continue
		}
		owner := NameOf(rr.Name)
		end := -1
		for i, l := range chain {
			if l.name == owner {
				end = i
				break
			}
		}
		if end < 0 {
			continue // not on the question's chain: names nothing
		}
		ttl := min(chain[end].ttl, ttlOf(rr.TTL))
		until := now.Add(time.Duration(ttl)*time.Second + n.grace).UnixNano()
		a := rr.Addr.Unmap().WithZone("")
		names := make([]string, 0, end+1)
		for _, l := range chain[:end+1] {
			names = append(names, l.name)
		}
		n.add(a, names, until, now.UnixNano())
		out[a] = names
	}
	return out
}

// ttlOf is a record's TTL as RFC 2181 reads it: above 2^31-1, zero.
func ttlOf(ttl uint32) uint32 {
	if ttl > maxTTL {
		return 0
	}
	return ttl
}

// plainName reports whether a normalized name is one a rule could spell:
// no escaped dot, space or other character (miekg presents them with a
// backslash), at most 253 bytes.
func plainName(s string) bool {
	return s != "" && len(s) <= 253 && !strings.ContainsAny(s, "\\ \t")
}

// add puts names (the question first) at the front of a's entries. Called
// with mu held.
func (n *Names) add(a netip.Addr, names []string, until, now int64) {
	old, ok := n.addrs[a]
	if !ok && len(n.addrs) >= n.max {
		if now-n.swept >= int64(time.Second) {
			n.swept = now
			n.sweep(now)
		}
		if len(n.addrs) >= n.max {
			return
		}
	}
	fresh := make([]nameEntry, 0, len(names)+4)
	for _, nm := range names {
		fresh = append(fresh, nameEntry{nm, until})
	}
	if old != nil {
		for _, e := range old.es {
			if len(fresh) >= maxNamesPerAddr {
				break // the oldest go
			}
			if e.until > now && !containsName(names, e.name) {
				fresh = append(fresh, e)
			}
		}
	}
	n.addrs[a] = n.record(a, fresh)
	n.count.Store(int32(len(n.addrs) + len(n.hosts)))
}

// record builds a's nameRec from its live entries. Called with mu held.
func (n *Names) record(a netip.Addr, es []nameEntry) *nameRec {
	r := &nameRec{es: es, soonest: 1<<63 - 1}
	var b strings.Builder
	for _, e := range es {
		r.soonest = min(r.soonest, e.until)
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(e.name)
	}
	r.joined = joinNames(b.String(), n.hosts[a])
	return r
}

// joinNames appends the hosts file's names to the DNS ones, without
// repeating a name.
func joinNames(dns, hosts string) string {
	if dns == "" || hosts == "" {
		return dns + hosts
	}
	out := dns
	have := " " + dns + " "
	for _, h := range strings.Fields(hosts) {
		if !strings.Contains(have, " "+h+" ") {
			out += " " + h
		}
	}
	return out
}

func (n *Names) sweep(now int64) {
	for a, r := range n.addrs {
		var live []nameEntry
		for _, e := range r.es {
			if e.until > now {
				live = append(live, e)
			}
		}
		if len(live) == 0 {
			delete(n.addrs, a)
		} else {
			n.addrs[a] = n.record(a, live)
		}
	}
}

func containsName(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// SetHosts sets the names of the hosts file (address to names, in file
// order). They do not expire.
func (n *Names) SetHosts(h map[netip.Addr][]string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.hosts = map[netip.Addr]string{}
	for a, names := range h {
		var norm []string
		for _, nm := range names {
			if nm = NameOf(nm); !containsName(norm, nm) {
				norm = append(norm, nm)
			}
		}
		n.hosts[a.Unmap().WithZone("")] = strings.Join(norm, " ")
	}
	for a, r := range n.addrs {
		n.addrs[a] = n.record(a, r.es)
	}
	n.count.Store(int32(len(n.addrs) + len(n.hosts)))
}

// Empty reports whether the table names no address at all: the sentry
// then skips the lookup.
func (n *Names) Empty() bool { return n == nil || n.count.Load() == 0 }

// Lookup returns the names a is known by at now, as Request.Names spells
// them: the DNS names still valid, newest answer first, the question before
// its CNAME targets, then the hosts file's. "" if none. looked reports that
// some came from DNS (Request.Looked).
func (n *Names) Lookup(a netip.Addr, now time.Time) (names string, looked bool) {
	if n.Empty() {
		return "", false
	}
	a = a.Unmap().WithZone("")
	t := now.UnixNano()
	n.mu.RLock()
	r, hs := n.addrs[a], n.hosts[a]
	n.mu.RUnlock()
	if r == nil {
		return hs, false
	}
	if r.soonest > t {
		return r.joined, true // every name still valid: no allocation
	}
	var b strings.Builder
	for _, e := range r.es {
		if e.until > t {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(e.name)
		}
	}
	return joinNames(b.String(), hs), b.Len() > 0
}

// MatchName reports whether name (normalized) matches pattern: the same
// name, or for "*.example.com" any name below example.com, at any depth
// (not example.com itself).
func MatchName(pattern, name string) bool {
	if suffix, ok := strings.CutPrefix(pattern, "*."); ok {
		return len(name) > len(suffix)+1 && strings.HasSuffix(name, suffix) && name[len(name)-len(suffix)-1] == '.'
	}
	return pattern == name
}

// ParseHosts reads a hosts file (hosts(5)): an address, then its names;
// '#' starts a comment. Lines that do not parse are skipped, as glibc's
// files backend skips them.
func ParseHosts(text string) map[netip.Addr][]string {
	out := map[netip.Addr][]string{}
	for _, line := range strings.Split(text, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		a, err := netip.ParseAddr(f[0])
		if err != nil {
			continue
		}
		a = a.Unmap().WithZone("")
		for _, nm := range f[1:] {
			if looksLikeHostname(nm) {
				if nm = NameOf(nm); !containsName(out[a], nm) {
					out[a] = append(out[a], nm)
				}
			}
		}
	}
	return out
}
