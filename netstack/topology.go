package netstack

import (
	"fmt"
	"net/netip"
)

// Network is an optional virtual topology: the interfaces, routes and hosts
// the program should believe it sits among. It decides IP destinations that
// no rule matched, the way a real network would answer them. Loopback and
// the interfaces' own addresses are not part of it: those go to the default.
type Network struct {
	Interfaces []Interface
	Routes     []Route
	Hosts      []Host

	routes []route // interface subnets first, then declared routes
	hosts  map[netip.Addr]*Host
	local  map[netip.Addr]bool // interface addresses
	bcast  map[netip.Addr]bool // IPv4 subnet broadcast addresses
}

// Interface is a virtual network interface.
type Interface struct {
	Name   string
	Addrs  []netip.Prefix // address and on-link subnet, as in "10.50.0.2/24"
	Origin string
}

// Route sends a destination prefix to a gateway, or on-link without Via.
type Route struct {
	To     netip.Prefix
	Via    netip.Addr // invalid: on-link
	Origin string
}

// Host is a declared machine on the virtual network.
type Host struct {
	Addr     netip.Addr
	Name     string // for messages only
	Services []Service
	Origin   string
}

// Service is what a host answers on some ports. A declared host answers
// Refuse on every port no service covers.
type Service struct {
	Ports   PortRange
	Types   TypeSet // tcp/udp; 0: both
	Verdict Verdict
	Origin  string

	rule string // Decision.Rule, made once by compile
}

type route struct {
	to     netip.Prefix
	via    netip.Addr
	iface  string // for an interface's own subnet
	origin string
}

// compile validates the topology and builds its lookup tables.
func (n *Network) compile() error {
	n.routes, n.hosts = nil, map[netip.Addr]*Host{}
	n.local, n.bcast = map[netip.Addr]bool{}, map[netip.Addr]bool{}
	names := map[string]bool{}
	for _, ifc := range n.Interfaces {
		if names[ifc.Name] {
			return errAt(ifc.Origin, "network", "interface %q declared twice", ifc.Name)
		}
		names[ifc.Name] = true
		for _, pf := range ifc.Addrs {
			a := pf.Addr()
			if a.Zone() != "" || a.Is4In6() || a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() {
				return errAt(ifc.Origin, "network", "%s: expected a unicast, non-loopback interface address", pf)
			}
			n.local[a] = true
			n.routes = append(n.routes, route{to: pf.Masked(), iface: ifc.Name, origin: ifc.Origin})
			if a.Is4() && pf.Bits() <= 30 {
				n.bcast[lastAddr(pf)] = true
			}
		}
	}
	if len(n.local) > 0 || len(n.Routes) > 0 {
		n.bcast[netip.AddrFrom4([4]byte{255, 255, 255, 255})] = true
	}
	for _, rt := range n.Routes {
		if rt.Via.IsValid() {
			if r, ok := n.route(rt.Via); !ok || r.via.IsValid() {
				return errAt(rt.Origin, "network", "gateway %s: expected an address on an interface's subnet", rt.Via)
			}
			if rt.Via.Is4() != rt.To.Addr().Is4() {
				return errAt(rt.Origin, "network", "gateway %s is not of the same IP version as %s", rt.Via, rt.To)
			}
		}
		n.routes = append(n.routes, route{to: rt.To.Masked(), via: rt.Via, origin: rt.Origin})
	}
	n.Hosts = append([]Host(nil), n.Hosts...) // compile annotates them: keep the caller's intact
	for i := range n.Hosts {
		h := &n.Hosts[i]
		h.Services = append([]Service(nil), h.Services...)
		host := h.Addr.String()
		if h.Addr.Is6() {
			host = "[" + host + "]"
		}
		for j := range h.Services {
			s := &h.Services[j]
			s.rule = s.Origin + ": service " + host + ":" + s.Ports.String()
		}
		switch {
		case n.hosts[h.Addr] != nil:
			return errAt(h.Origin, "network", "host %s declared twice (first at %s)", h.Addr, n.hosts[h.Addr].Origin)
		case n.local[h.Addr]:
			return errAt(h.Origin, "network", "host %s is an interface's own address", h.Addr)
		case n.bcast[h.Addr]:
			return errAt(h.Origin, "network", "host %s is a broadcast address", h.Addr)
		case !h.Addr.IsValid() || h.Addr.Zone() != "" || h.Addr.Is4In6() || h.Addr.IsLoopback() || h.Addr.IsUnspecified() || h.Addr.IsMulticast():
			return errAt(h.Origin, "network", "host %s: expected a unicast, non-loopback address", h.Addr)
		}
		if _, ok := n.route(h.Addr); !ok {
			return errAt(h.Origin, "network", "host %s is reachable by no route: add an interface on its subnet or a route", h.Addr)
		}
		for _, s := range h.Services {
			if s.Verdict.Action == Redirect && h.Addr.Is4() && s.Verdict.To.Addr().Is6() {
				return errAt(s.Origin, "network", "IPv4 sockets cannot redirect to IPv6 %s", s.Verdict.To.Addr())
			}
		}
		n.hosts[h.Addr] = h
	}
	return nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := ^uint32(0) >> uint(p.Bits())
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// route is the longest-prefix route to a; the first declared wins a tie.
func (n *Network) route(a netip.Addr) (route, bool) {
	best, ok := route{}, false
	for _, r := range n.routes {
		if r.to.Contains(a) && (!ok || r.to.Bits() > best.to.Bits()) {
			best, ok = r, true
		}
	}
	return best, ok
}

// topoKind is the outcome of the topology for one request.
type topoKind uint8

const (
	topoPass        topoKind = iota // not the topology's to decide: default
	topoNoRoute                     // ENETUNREACH
	topoBroadcastTC                 // stream to a broadcast or multicast address: ENETUNREACH
	topoBroadcast                   // datagram to broadcast without SO_BROADCAST: EACCES
	topoNoARP                       // on-link address nobody holds: EHOSTUNREACH after ARP
	topoService                     // a declared service's verdict
	topoClosed                      // declared host, no service on the port: ECONNREFUSED
)

type topoResult struct {
	kind  topoKind
	addr  netip.Addr
	route route
	host  *Host
	svc   *Service
}

// decide applies the topology to r. Linux is the reference for each case:
// tcp_v4_connect and tcp_v6_connect reject broadcast and multicast with
// ENETUNREACH, ip4_datagram_connect rejects broadcast without SO_BROADCAST
// with EACCES, and a failed neighbour lookup gives EHOSTUNREACH.
func (n *Network) decide(r Request) topoResult {
	a, ok := inetAddr(r)
	if !ok || a.IsLoopback() || a.IsUnspecified() || n.local[a] {
		return topoResult{kind: topoPass}
	}
	res := topoResult{addr: a}
	if n.bcast[a] || a.IsMulticast() {
		switch {
		case r.Type == TypeStream:
			res.kind = topoBroadcastTC
		case a.IsMulticast():
			// multicast datagrams follow the routes below
		case !r.Broadcast:
			res.kind = topoBroadcast
		default:
			return topoResult{kind: topoPass} // permitted broadcast: the default decides
		}
		if res.kind != topoPass {
			return res
		}
	}
	rt, ok := n.route(a)
	if !ok {
		res.kind = topoNoRoute
		return res
	}
	res.route = rt
	if h := n.hosts[a]; h != nil {
		res.host, res.kind = h, topoClosed
		for i := range h.Services {
			s := &h.Services[i]
			if s.Ports.Contains(r.Addr.Port()) && s.Types.Has(r.Type) {
				res.svc, res.kind = s, topoService
				break
			}
		}
		return res
	}
	if !rt.via.IsValid() {
		res.kind = topoNoARP
		return res
	}
	return topoResult{kind: topoPass} // beyond a gateway and undeclared
}

func (res topoResult) decision(r Request) Decision {
	switch res.kind {
	case topoNoRoute:
		return Decision{Action: Unreachable, Reason: ReasonNet, Rule: "network: no route to " + res.addr.String()}
	case topoBroadcastTC:
		return Decision{Action: Unreachable, Reason: ReasonNet, Rule: "network: " + res.addr.String() + " is a broadcast or multicast address"}
	case topoBroadcast:
		return Decision{Action: Deny, Reason: ReasonBroadcast, Rule: "network: " + res.addr.String() + " is a broadcast address and the socket lacks SO_BROADCAST"}
	case topoNoARP:
		return Decision{Action: Unreachable, Reason: ReasonHost, Delay: DefaultARPDelay, Rule: "network: nothing holds " + res.addr.String() + " on the link"}
	case topoClosed:
		return Decision{Action: Refuse, Rule: "network: host " + res.addr.String() + " has no service on port " + fmt.Sprint(r.Addr.Port())}
	case topoService:
		return res.svc.Verdict.decision(r, res.svc.rule)
	}
	return Decision{}
}

// explain says in words what res means, for Explain.
func (res topoResult) explain(r Request) string {
	switch res.kind {
	case topoNoRoute:
		return fmt.Sprintf("no route of the virtual network covers %s", res.addr)
	case topoBroadcastTC:
		return fmt.Sprintf("%s is a broadcast or multicast address, which a stream socket cannot connect to", res.addr)
	case topoBroadcast:
		return fmt.Sprintf("%s is a subnet broadcast address and the socket does not have SO_BROADCAST", res.addr)
	case topoNoARP:
		return fmt.Sprintf("%s is on the link of %s (%s) but is no declared host: ARP fails after %s", res.addr, res.route.iface, res.route.to, DefaultARPDelay)
	case topoClosed:
		return fmt.Sprintf("host %s (%s) has no service on %s port %d", res.addr, res.host.label(), r.Type, r.Addr.Port())
	case topoService:
		return fmt.Sprintf("host %s (%s) declares a service on port %s at %s", res.addr, res.host.label(), res.svc.Ports, res.svc.Origin)
	}
	return ""
}

func (h *Host) label() string {
	if h.Name != "" {
		return h.Name + ", " + h.Origin
	}
	return h.Origin
}
