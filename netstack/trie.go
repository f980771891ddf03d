package netstack

import (
	"math"
	"math/bits"
	"net/netip"
	"sort"
)

// The fast lookup. A policy may hold tens of thousands of CIDR+port rules
// and Decide runs on every connect, so IP rules are indexed by a
// path-compressed binary trie over address bits, one per IP version. A rule
// sits at the node of each of its prefixes. Walking the address from the
// root visits exactly the nodes whose prefix contains it; each node answers
// "lowest rule index here that matches this port and socket class"
// (scanning the few rules there, or from a precomputed port table when there
// are many), and the lowest over the walk is the first matching rule, as a
// linear scan would find it. A subtree whose lowest rule cannot beat the
// best so far is skipped. Unix and other-family rules are few and are
// scanned in order.

const noRule = math.MaxInt32

// class packs what a trie rule is filtered on besides address and port:
// the socket type (4 values) and whether the socket family is inet6.
type class uint8

const numClasses = 8

func classOf(r Request) class {
	c := class(r.Type&3) << 1
	if r.Family == FamilyInet6 {
		c |= 1
	}
	return c
}

// entry is one rule (via one Dest) at one trie node.
type entry struct {
	rule    int32
	ports   PortRange
	classes uint8 // bit c set: the rule matches class c
}

// classMask is the set of classes in which rule rl with dest d can match.
func classMask(rl *Rule, d Dest) uint8 {
	var m uint8
	for t := SockType(0); t < 4; t++ {
		for i, f := range []Family{FamilyInet, FamilyInet6} {
			if rl.Type.Has(t) && d.Types.Has(t) && rl.Family.Has(f) {
				m |= 1 << (uint(t)<<1 | uint(i))
			}
		}
	}
	return m
}

// tnode is a node of a path-compressed binary trie: it stands for the
// prefix key/bits, and a child exists only where paths branch or a rule
// ends, so a walk visits few nodes however long the prefixes.
type tnode struct {
	key   key
	bits  int32
	min   int32    // lowest rule index in this subtree, to stop early
	child [2]int32 // 0: none (the root is nobody's child)
	table int32    // index in trie.tables when many rules end here, else -1
	flat  int32    // when few rules end here: they are trie.flat[flat:flat+nflat]
	nflat int32
}

// flatMax is how many rules may end at one node before it gets a port
// table: scanning a few entries in one cache line beats three lookups.
const flatMax = 4

// portTable answers, for the rules ending at one node, the lowest rule
// index per (port segment, class). Segment i covers ports starts[i] up to
// starts[i+1]-1.
type portTable struct {
	starts []uint16
	best   []int32 // len(starts)*numClasses
}

func (t *portTable) lookup(port uint16, c class) int32 {
	lo, hi := 0, len(t.starts) // find the last start <= port; starts[0] == 0
	for hi-lo > 1 {
		mid := int(uint(lo+hi) >> 1)
		if t.starts[mid] <= port {
			lo = mid
		} else {
			hi = mid
		}
	}
	return t.best[lo*numClasses+int(c)]
}

type trie struct {
	bits   int // 32 or 128
	nodes  []tnode
	tables []portTable
	flat   []entry // sorted by rule within each node's run
}

// trieBuilder collects entries per node before the tables are built.
type trieBuilder struct {
	t       trie
	entries map[int32][]entry
}

func newTrieBuilder(bits int) *trieBuilder {
	return &trieBuilder{
		t:       trie{bits: bits, nodes: []tnode{{table: -1, min: noRule}}},
		entries: map[int32][]entry{},
	}
}

// key holds an address as 128 bits, most significant first; IPv4 uses the
// top 32.
type key [2]uint64

func keyOf(a netip.Addr) key {
	if a.Is4() {
		b := a.As4()
		return key{uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32, 0}
	}
	b := a.As16()
	var k key
	for i := 0; i < 16; i++ {
		k[i/8] |= uint64(b[i]) << (56 - 8*(i%8))
	}
	return k
}

func (k key) bit(i int32) int { return int(k[i>>6]>>(63-uint(i&63))) & 1 }

// masked keeps the first n bits of k.
func (k key) masked(n int32) key {
	switch {
	case n <= 0:
		return key{}
	case n < 64:
		return key{k[0] &^ (^uint64(0) >> uint(n)), 0}
	case n < 128:
		return key{k[0], k[1] &^ (^uint64(0) >> uint(n-64))}
	}
	return k
}

// common is the length of the longest common prefix of k and o, at most n.
func (k key) common(o key, n int32) int32 {
	c := int32(bits.LeadingZeros64(k[0] ^ o[0]))
	if c == 64 {
		c += int32(bits.LeadingZeros64(k[1] ^ o[1]))
	}
	return min(c, n)
}

// hasPrefix reports whether the first n bits of k equal those of p.
func (k key) hasPrefix(p key, n int32) bool { return k.common(p, n) == n }

func (b *trieBuilder) newNode(k key, n int32) int32 {
	b.t.nodes = append(b.t.nodes, tnode{key: k.masked(n), bits: n, table: -1, min: noRule})
	return int32(len(b.t.nodes) - 1)
}

func (b *trieBuilder) add(p netip.Prefix, e entry) {
	k, m := keyOf(p.Addr()), int32(p.Bits())
	n := int32(0) // the root stands for the empty prefix
	for {
		nd := &b.t.nodes[n]
		nd.min = min(nd.min, e.rule)
		if nd.bits == m {
			b.entries[n] = append(b.entries[n], e)
			return
		}
		side := k.bit(nd.bits)
		c := nd.child[side]
		if c == 0 { // nothing below on this side: a leaf for p
			leaf := b.newNode(k, m)
			b.t.nodes[n].child[side] = leaf
			n = leaf
			continue
		}
		ch := b.t.nodes[c]
		if cl := k.common(ch.key, min(ch.bits, m)); cl < ch.bits {
			// p leaves the child's path at bit cl: split there.
			mid := b.newNode(k, cl)
			b.t.nodes[mid].child[ch.key.bit(cl)] = c
			b.t.nodes[mid].min = ch.min
			b.t.nodes[n].child[side] = mid
			c = mid
		}
		n = c
	}
}

func (b *trieBuilder) build() trie {
	ids := make([]int32, 0, len(b.entries))
	for n := range b.entries {
		ids = append(ids, n)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] }) // deterministic layout
	for _, n := range ids {
		es, nd := b.entries[n], &b.t.nodes[n]
		if len(es) > flatMax {
			nd.table = int32(len(b.t.tables))
			b.t.tables = append(b.t.tables, buildPortTable(es))
			continue
		}
		sort.Slice(es, func(i, j int) bool { return es[i].rule < es[j].rule })
		nd.flat, nd.nflat = int32(len(b.t.flat)), int32(len(es))
		b.t.flat = append(b.t.flat, es...)
	}
	return b.t
}

// buildPortTable splits the port space at every range boundary and paints,
// per class, each segment with the lowest rule covering it. Entries are
// painted in rule order and a "next unpainted segment" union-find skips
// painted segments, so wide overlapping ranges cost no more than narrow
// ones.
func buildPortTable(es []entry) portTable {
	sort.SliceStable(es, func(i, j int) bool { return es[i].rule < es[j].rule })
	bounds := map[uint16]bool{0: true}
	for _, e := range es {
		bounds[e.ports.Lo] = true
		if e.ports.Hi < 65535 {
			bounds[e.ports.Hi+1] = true
		}
	}
	t := portTable{}
	for p := range bounds {
		t.starts = append(t.starts, p)
	}
	sort.Slice(t.starts, func(i, j int) bool { return t.starts[i] < t.starts[j] })
	n := len(t.starts)
	t.best = make([]int32, n*numClasses)
	for i := range t.best {
		t.best[i] = noRule
	}
	seg := func(p uint16) int { // the segment holding port p
		return sort.Search(n, func(i int) bool { return t.starts[i] > p }) - 1
	}
	next := make([]int, n+1)
	var find func(int) int
	find = func(i int) int {
		for next[i] != i {
			next[i] = next[next[i]]
			i = next[i]
		}
		return i
	}
	for c := 0; c < numClasses; c++ {
		for i := range next {
			next[i] = i
		}
		for _, e := range es {
			if e.classes&(1<<c) == 0 {
				continue
			}
			hi := seg(e.ports.Hi)
			for i := find(seg(e.ports.Lo)); i <= hi; i = find(i + 1) {
				t.best[i*numClasses+c] = e.rule
				next[i] = i + 1
			}
		}
	}
	return t
}

// lookup returns the lowest rule index matching address a, port and class,
// or noRule.
func (t *trie) lookup(a netip.Addr, port uint16, c class) int32 {
	k, n, best := keyOf(a), int32(0), int32(noRule)
	for {
		nd := &t.nodes[n]
		if nd.min >= best || !k.hasPrefix(nd.key, nd.bits) {
			return best // nothing below can beat best, or a is not under nd
		}
		for _, e := range t.flat[nd.flat : nd.flat+nd.nflat] {
			if e.rule >= best {
				break
			}
			if e.classes&(1<<c) != 0 && e.ports.Contains(port) {
				best = e.rule
				break
			}
		}
		if nd.table >= 0 {
			best = min(best, t.tables[nd.table].lookup(port, c))
		}
		if nd.bits == int32(t.bits) {
			return best
		}
		if n = nd.child[k.bit(nd.bits)]; n == 0 {
			return best
		}
	}
}

// The roots of the tries: rules for every address sit there.
var (
	allIPv4 = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	allIPv6 = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
)
