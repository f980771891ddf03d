package netstack

import (
	"net/netip"
	"testing"
	"time"
)

const topoPolicy = `
default: deny
rules:
  - allow: tcp:10.50.0.20:22
network:
  interfaces:
    - name: eth0
      address: [10.50.0.2/24, "fd50::2/64"]
    - name: eth1
      address: 10.60.0.2/16
  routes:
    - to: default
      via: 10.50.0.1
    - to: 172.16.0.0/12
      via: 10.60.0.1
    - to: 192.168.77.0/24        # on-link without a gateway
  hosts:
    - address: 10.50.0.10
      name: web
      services:
        - port: 80
          proto: tcp
          verdict: redirect
          to: 127.0.0.1:8080
        - port: 8000-8099
          verdict: timeout
          after: 2s
        - port: 53
          proto: udp
          verdict: allow
    - address: 172.16.5.5
      services:
        - port: 5432
          verdict: refuse
          after: 40ms
    - address: fd50::10
      services:
        - port: 443
          verdict: deny
          errno: EPERM
`

func TestTopology(t *testing.T) {
	p := mustParse(t, topoPolicy)
	bcast := inet(TypeDgram, "10.50.0.255:9")
	bcastOK := bcast
	bcastOK.Broadcast = true
	tests := []struct {
		name string
		req  Request
		want Decision
	}{
		{"declared service redirects", inet(TypeStream, "10.50.0.10:80"),
			Decision{Action: Redirect, Redirect: netip.MustParseAddrPort("127.0.0.1:8080"), Rule: "p.yaml:21:11: service 10.50.0.10:80"}},
		{"service port range, any proto", inet(TypeDgram, "10.50.0.10:8050"),
			Decision{Action: Timeout, Timeout: 2 * time.Second, Rule: "p.yaml:25:11: service 10.50.0.10:8000-8099"}},
		{"udp service", inet(TypeDgram, "10.50.0.10:53"),
			Decision{Action: Allow, Rule: "p.yaml:28:11: service 10.50.0.10:53"}},
		{"tcp to a udp-only service port: closed", inet(TypeStream, "10.50.0.10:53"),
			Decision{Action: Refuse, Rule: "network: host 10.50.0.10 has no service on port 53"}},
		{"declared host, no service", inet(TypeStream, "10.50.0.10:81"),
			Decision{Action: Refuse, Rule: "network: host 10.50.0.10 has no service on port 81"}},
		{"v4-mapped reaches the same host", inet(TypeStream, "[::ffff:10.50.0.10]:81"),
			Decision{Action: Refuse, Rule: "network: host 10.50.0.10 has no service on port 81"}},
		{"host behind a gateway", inet(TypeStream, "172.16.5.5:5432"),
			Decision{Action: Refuse, Delay: 40 * time.Millisecond, Rule: "p.yaml:33:11: service 172.16.5.5:5432"}},
		{"IPv6 host", inet(TypeStream, "[fd50::10]:443"),
			Decision{Action: Deny, Reason: ReasonPerm, Rule: "p.yaml:38:11: service [fd50::10]:443"}},
		{"on-link, nobody there: ARP fails", inet(TypeStream, "10.50.0.77:80"),
			Decision{Action: Unreachable, Reason: ReasonHost, Delay: DefaultARPDelay, Rule: "network: nothing holds 10.50.0.77 on the link"}},
		{"on-link IPv6, nobody there", inet(TypeStream, "[fd50::77]:80"),
			Decision{Action: Unreachable, Reason: ReasonHost, Delay: DefaultARPDelay, Rule: "network: nothing holds fd50::77 on the link"}},
		{"on-link route without gateway", inet(TypeStream, "192.168.77.5:80"),
			Decision{Action: Unreachable, Reason: ReasonHost, Delay: DefaultARPDelay, Rule: "network: nothing holds 192.168.77.5 on the link"}},
		{"no IPv6 default route", inet(TypeStream, "[2001:db8::1]:443"),
			Decision{Action: Unreachable, Reason: ReasonNet, Rule: "network: no route to 2001:db8::1"}},
		{"beyond the gateway, undeclared: default", inet(TypeStream, "8.8.8.8:443"),
			Decision{Action: Deny, Reason: ReasonAccess}},
		{"a rule comes before the topology", inet(TypeStream, "10.50.0.20:22"),
			Decision{Action: Allow, Rule: "p.yaml:4: allow: tcp:10.50.0.20:22"}},
		{"broadcast without SO_BROADCAST", bcast,
			Decision{Action: Deny, Reason: ReasonBroadcast, Rule: "network: 10.50.0.255 is a broadcast address and the socket lacks SO_BROADCAST"}},
		{"broadcast with SO_BROADCAST: default", bcastOK, Decision{Action: Deny, Reason: ReasonAccess}},
		{"limited broadcast", inet(TypeDgram, "255.255.255.255:67"),
			Decision{Action: Deny, Reason: ReasonBroadcast, Rule: "network: 255.255.255.255 is a broadcast address and the socket lacks SO_BROADCAST"}},
		{"TCP to broadcast", inet(TypeStream, "10.60.255.255:80"),
			Decision{Action: Unreachable, Reason: ReasonNet, Rule: "network: 10.60.255.255 is a broadcast or multicast address"}},
		{"TCP to multicast", inet(TypeStream, "224.0.0.1:80"),
			Decision{Action: Unreachable, Reason: ReasonNet, Rule: "network: 224.0.0.1 is a broadcast or multicast address"}},
		{"UDP multicast follows routes", inet(TypeDgram, "239.1.1.1:5000"), Decision{Action: Deny, Reason: ReasonAccess}},
		{"loopback is not the topology's", inet(TypeStream, "127.0.0.1:80"), Decision{Action: Deny, Reason: ReasonAccess}},
		{"own interface address is not either", inet(TypeStream, "10.50.0.2:80"), Decision{Action: Deny, Reason: ReasonAccess}},
		{"unix is not either", unixPath("/x"), Decision{Action: Deny, Reason: ReasonAccess}},
	}
	for _, tt := range tests {
		if got := p.Decide(tt.req); got != tt.want {
			t.Errorf("%s: Decide(%s) =\n %+v, want\n %+v", tt.name, tt.req.Dest(), got, tt.want)
		}
	}
}

func TestTopologyNoRoutes(t *testing.T) {
	p := mustParse(t, "network:\n  interfaces:\n    - {name: eth0, address: 10.0.0.2/30}\n")
	if d := p.Decide(inet(TypeStream, "10.0.0.1:80")); d.Action != Unreachable || d.Reason != ReasonHost {
		t.Errorf("on-link /30: %+v", d)
	}
	if d := p.Decide(inet(TypeDgram, "10.0.0.3:80")); d.Reason != ReasonBroadcast {
		t.Errorf("broadcast of a /30: %+v", d)
	}
	if d := p.Decide(inet(TypeStream, "1.1.1.1:80")); d.Action != Unreachable || d.Reason != ReasonNet {
		t.Errorf("off-link without routes: %+v", d)
	}
	// /31 and /32 have no broadcast address.
	q := mustParse(t, "network:\n  interfaces:\n    - {name: p2p, address: 10.0.0.0/31}\n")
	if d := q.Decide(inet(TypeDgram, "10.0.0.1:80")); d.Reason == ReasonBroadcast {
		t.Errorf("/31 peer taken for broadcast: %+v", d)
	}
}

// A policy's network is private: recompiling for flags must not disturb
// the original, which may be deciding concurrently.
func TestWithFlagsKeepsNetwork(t *testing.T) {
	p := mustParse(t, topoPolicy)
	q, err := p.WithFlags(flags(t, "allow", "10.50.0.77"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Network() == q.Network() {
		t.Error("network shared between policies")
	}
	if d := p.Decide(inet(TypeStream, "10.50.0.77:80")); d.Action != Unreachable {
		t.Errorf("original changed: %+v", d)
	}
	if d := q.Decide(inet(TypeStream, "10.50.0.77:80")); d.Action != Allow {
		t.Errorf("flag ignored: %+v", d)
	}
}
