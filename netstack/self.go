package netstack

import (
	"net/netip"
	"sort"
	"strings"
	"sync"
	"unicode"

	"sandbox/internal/shell"
)

// Endpoint is a socket address the sandboxed process tree listens on or has
// bound.
type Endpoint struct {
	Family Family   // FamilyInet, FamilyInet6 or FamilyUnix
	Type   SockType // inet: TCP and UDP ports are distinct; ignored for Unix
	// Addr is the bound inet address; 0.0.0.0 or :: for a wildcard bind.
	Addr netip.AddrPort
	// Unix is the bound Unix address; Path must be absolute.
	Unix UnixAddr
}

// Endpoints is the registry of the tree's own endpoints that the "self"
// default consults. The sentry feeds it as it learns of binds and closes.
// It is safe for concurrent use; entries are counted, so two sockets bound
// to one address (SO_REUSEPORT) need two Removes.
type Endpoints struct {
	mu       sync.RWMutex
	inet     map[inetKey]int
	unixPath map[string]int
	abstract map[string]int
	local    map[netip.Addr]bool
}

type inetKey struct {
	addr netip.Addr
	port uint16
	typ  SockType
}

// NewEndpoints returns an empty registry (as is the zero Endpoints).
func NewEndpoints() *Endpoints { return &Endpoints{} }

func (e *Endpoints) key(ep Endpoint) (m map[string]int, s string, ik inetKey, isInet bool) {
	switch ep.Family {
	case FamilyInet, FamilyInet6:
		return nil, "", inetKey{ep.Addr.Addr().Unmap().WithZone(""), ep.Addr.Port(), ep.Type}, true
	case FamilyUnix:
		if ep.Unix.Abstract {
			return e.abstract, ep.Unix.Name, inetKey{}, false
		}
		if ep.Unix.Path != "" {
			return e.unixPath, ep.Unix.Path, inetKey{}, false
		}
	}
	return nil, "", inetKey{}, false
}

// Add records an endpoint. Endpoints of other families, and unnamed Unix
// sockets, are ignored.
func (e *Endpoints) Add(ep Endpoint) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.inet == nil {
		e.inet, e.unixPath, e.abstract = map[inetKey]int{}, map[string]int{}, map[string]int{}
	}
	if m, s, ik, isInet := e.key(ep); isInet {
		e.inet[ik]++
	} else if m != nil {
		m[s]++
	}
}

// Remove forgets one Add of the endpoint.
func (e *Endpoints) Remove(ep Endpoint) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if m, s, ik, isInet := e.key(ep); isInet {
		if e.inet[ik] > 1 {
			e.inet[ik]--
		} else {
			delete(e.inet, ik)
		}
	} else if m[s] > 1 {
		m[s]--
	} else {
		delete(m, s)
	}
}

// SetLocalAddrs declares the machine's own non-loopback addresses, at which
// a wildcard bind is reachable too. Loopback is always local.
func (e *Endpoints) SetLocalAddrs(addrs []netip.Addr) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.local = map[netip.Addr]bool{}
	for _, a := range addrs {
		e.local[a.Unmap().WithZone("")] = true
	}
}

// Contains reports whether r's destination is one of the tree's endpoints.
// An inet destination matches an exact bind of the same type, or a
// wildcard bind (0.0.0.0 or ::) on the same port when it is a local
// address. A :: bind counts for IPv4 too, as a dual-stack socket accepts
// it. Connecting to 0.0.0.0 or :: reaches loopback, as on Linux.
func (e *Endpoints) Contains(r Request) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	switch r.Family {
	case FamilyUnix:
		if r.Unix.Abstract {
			return e.abstract[r.Unix.Name] > 0
		}
		return r.Unix.Path != "" && e.unixPath[r.Unix.Path] > 0
	case FamilyInet, FamilyInet6:
		a, ok := inetAddr(r)
		if !ok {
			return false
		}
		port := r.Addr.Port()
		if a.Is4() && a.IsUnspecified() {
			a = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		} else if a.IsUnspecified() {
			a = netip.IPv6Loopback()
		}
		has := func(x netip.Addr) bool { return e.inet[inetKey{x, port, r.Type}] > 0 }
		if has(a) {
			return true
		}
		if !a.IsLoopback() && !e.local[a] {
			return false
		}
		return has(netip.IPv6Unspecified()) || a.Is4() && has(netip.IPv4Unspecified())
	}
	return false
}

// List returns the registered endpoints, sorted, for messages and tests.
func (e *Endpoints) List() []Endpoint {
	e.mu.RLock()
	defer e.mu.RUnlock()
	var out []Endpoint
	for k := range e.inet {
		f := FamilyInet6
		if k.addr.Is4() {
			f = FamilyInet
		}
		out = append(out, Endpoint{Family: f, Type: k.typ, Addr: netip.AddrPortFrom(k.addr, k.port)})
	}
	for p := range e.unixPath {
		out = append(out, Endpoint{Family: FamilyUnix, Unix: UnixAddr{Path: p}})
	}
	for n := range e.abstract {
		out = append(out, Endpoint{Family: FamilyUnix, Unix: UnixAddr{Abstract: true, Name: n}})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// String renders the endpoint in the DEST syntax.
func (ep Endpoint) String() string {
	return Request{Family: ep.Family, Type: ep.Type, Addr: ep.Addr, Unix: ep.Unix}.Dest()
}

// Suggest returns the command-line flag that would allow r, such as
// "--allow tcp:127.0.0.1:8080", quoted for a POSIX shell where needed.
func Suggest(r Request) string {
	var dest string
	switch r.Family {
	case FamilyInet, FamilyInet6:
		a, ok := inetAddr(r)
		if !ok {
			return "--allow-all"
		}
		dest = netip.AddrPortFrom(a, r.Addr.Port()).String()
		switch r.Type {
		case TypeStream:
			dest = "tcp:" + dest
		case TypeDgram:
			dest = "udp:" + dest
		}
	case FamilyUnix:
		switch {
		case r.Unix.Abstract:
			dest = "unix:@" + globLiteral(r.Unix.Name)
		case r.Unix.Path != "":
			dest = "unix:" + globLiteral(r.Unix.Path)
		default:
			return ""
		}
	default:
		return "--allow-all"
	}
	return "--allow " + shell.Quote(dest)
}

// globLiteral escapes s so that path.Match matches it literally. A
// character the DEST syntax cannot carry (NUL, control bytes) becomes '?'.
func globLiteral(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case strings.ContainsRune(`*?[\`, c):
			b.WriteByte('\\')
			b.WriteRune(c)
		case c == unicode.ReplacementChar || !unicode.IsPrint(c):
			b.WriteByte('?')
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}
