// Command dnsd is a small DNS server for tests. It answers from a zone file
// and never forwards anything upstream: a name it does not know is
// NXDOMAIN.
//
//	dnsd -listen 10.231.0.2:53,[fd00:231::2]:53 -zone FILE [flags]
//
// The zone file has one record per line, NAME TTL TYPE VALUE, with TYPE
// one of A, AAAA or CNAME; blank lines and lines starting with # are
// skipped:
//
//	web.test      60 A     10.231.0.2
//	www.web.test  60 CNAME edge.cdn.test
//	edge.cdn.test  5 A     10.231.0.2
//
// Answers follow CNAME chains inside the zone and carry the whole chain, as
// a recursive resolver returns it. A known name without a record of the
// asked type gets NOERROR with no answers (NODATA); NXDOMAIN and NODATA
// carry a made-up SOA of the name's top-level domain in the authority
// section, as real resolvers do (its minimum is the negative TTL, 30 s).
// Every answer has RA set and AA clear, like a recursive resolver's.
//
// Each -listen address is served over UDP and TCP. Once every listener is
// up, dnsd prints the line "ready"; then one line per query,
//
//	query PROTO QTYPE NAME FROM
//
// (PROTO udp or tcp, NAME as asked, FROM the client's address), written
// before the query is answered. SIGTERM or SIGINT stops it (exit 0).
//
// Other flags change the answers, for names matched case-insensitively:
// -truncate NAME (UDP answers have TC set and no records; TCP answers are
// full), -rcode NAME=RCODE (for example bad.test=SERVFAIL), -delay
// NAME=DURATION (answer late), -silent (never answer anything) and
// -reply-from ADDR:PORT (send UDP answers from a socket bound there instead
// of the one the query came to, as a spoofer would).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// negativeTTL is the TTL and minimum of the SOA of negative answers.
const negativeTTL = 30

// maxChain bounds the CNAME chain followed for one answer.
const maxChain = 16

type config struct {
	zone      map[string][]dns.RR // owner name (lower-case FQDN) -> records
	truncate  map[string]bool
	rcode     map[string]int
	delay     map[string]time.Duration
	silent    bool
	replyFrom net.PacketConn // nil: answer from the listener
}

// listFlag collects a repeatable flag whose values may also be comma lists.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

var out struct {
	sync.Mutex
	w *os.File
}

// say prints one line on stdout. os.Stdout is unbuffered, so the line is
// out when say returns.
func say(format string, args ...any) {
	out.Lock()
	defer out.Unlock()
	fmt.Fprintf(out.w, format+"\n", args...)
}

func main() {
	out.w = os.Stdout
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "dnsd:", err)
		os.Exit(1)
	}
}

func run() error {
	var listen, truncate, rcodes, delays listFlag
	flag.Var(&listen, "listen", "`ADDR:PORT` to serve on, over UDP and TCP (repeatable, or a comma list)")
	zoneFile := flag.String("zone", "", "zone `FILE`: lines of NAME TTL TYPE VALUE")
	flag.Var(&truncate, "truncate", "`NAME` whose UDP answers are truncated (TC, no records); repeatable")
	flag.Var(&rcodes, "rcode", "`NAME=RCODE` to answer NAME with RCODE, e.g. bad.test=SERVFAIL; repeatable")
	flag.Var(&delays, "delay", "`NAME=DURATION` to answer NAME only after DURATION; repeatable")
	silent := flag.Bool("silent", false, "read queries but never answer")
	replyFrom := flag.String("reply-from", "", "send UDP answers from a socket bound to `ADDR:PORT`")
	flag.Parse()
	if flag.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if len(listen) == 0 {
		return errors.New("no -listen address")
	}

	cfg := &config{
		zone:     map[string][]dns.RR{},
		truncate: map[string]bool{},
		rcode:    map[string]int{},
		delay:    map[string]time.Duration{},
		silent:   *silent,
	}
	if *zoneFile != "" {
		if err := cfg.readZone(*zoneFile); err != nil {
			return err
		}
	}
	for _, name := range truncate {
		cfg.truncate[canonical(name)] = true
	}
	for _, v := range rcodes {
		name, code, ok := strings.Cut(v, "=")
		rc, known := dns.StringToRcode[strings.ToUpper(code)]
		if !ok || !known {
			return fmt.Errorf("-rcode %q: want NAME=RCODE with RCODE such as SERVFAIL, REFUSED, NXDOMAIN", v)
		}
		cfg.rcode[canonical(name)] = rc
	}
	for _, v := range delays {
		name, d, ok := strings.Cut(v, "=")
		dur, err := time.ParseDuration(d)
		if !ok || err != nil {
			return fmt.Errorf("-delay %q: want NAME=DURATION", v)
		}
		cfg.delay[canonical(name)] = dur
	}
	if *replyFrom != "" {
		pc, err := net.ListenPacket("udp", *replyFrom)
		if err != nil {
			return fmt.Errorf("-reply-from: %v", err)
		}
		cfg.replyFrom = pc
	}

	var servers []*dns.Server
	for _, addr := range listen {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		servers = append(servers,
			&dns.Server{PacketConn: pc, Handler: cfg, MsgAcceptFunc: acceptQueries},
			&dns.Server{Listener: ln, Handler: cfg, MsgAcceptFunc: acceptQueries})
	}
	errc := make(chan error, len(servers))
	for _, s := range servers {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go func() { errc <- s.ActivateAndServe() }()
		select {
		case <-started:
		case err := <-errc:
			return err
		}
	}
	say("ready")

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	for _, s := range servers {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = s.ShutdownContext(sctx)
		cancel()
	}
	return nil
}

// acceptQueries hands every query to the handler, including malformed
// ones (which the default would answer itself, unlogged); responses are
// dropped.
func acceptQueries(dh dns.Header) dns.MsgAcceptAction {
	if dh.Bits&(1<<15) != 0 { // QR: a response
		return dns.MsgIgnore
	}
	return dns.MsgAccept
}

func canonical(name string) string { return strings.ToLower(dns.Fqdn(name)) }

func (c *config) readZone(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		rr, err := parseRecord(text)
		if err != nil {
			return fmt.Errorf("%s:%d: %v", file, line, err)
		}
		owner := canonical(rr.Header().Name)
		c.zone[owner] = append(c.zone[owner], rr)
	}
	return sc.Err()
}

func parseRecord(text string) (dns.RR, error) {
	fields := strings.Fields(text)
	if len(fields) != 4 {
		return nil, fmt.Errorf("want NAME TTL TYPE VALUE, got %q", text)
	}
	ttl, err := strconv.ParseUint(fields[1], 10, 31)
	if err != nil {
		return nil, fmt.Errorf("TTL %q: %v", fields[1], err)
	}
	hdr := dns.RR_Header{Name: dns.Fqdn(fields[0]), Class: dns.ClassINET, Ttl: uint32(ttl)}
	value := fields[3]
	switch strings.ToUpper(fields[2]) {
	case "A":
		ip := net.ParseIP(value).To4()
		if ip == nil {
			return nil, fmt.Errorf("not an IPv4 address: %q", value)
		}
		hdr.Rrtype = dns.TypeA
		return &dns.A{Hdr: hdr, A: ip}, nil
	case "AAAA":
		ip := net.ParseIP(value)
		if ip == nil || ip.To4() != nil {
			return nil, fmt.Errorf("not an IPv6 address: %q", value)
		}
		hdr.Rrtype = dns.TypeAAAA
		return &dns.AAAA{Hdr: hdr, AAAA: ip}, nil
	case "CNAME":
		hdr.Rrtype = dns.TypeCNAME
		return &dns.CNAME{Hdr: hdr, Target: dns.Fqdn(value)}, nil
	}
	return nil, fmt.Errorf("type %q: want A, AAAA or CNAME", fields[2])
}

func protoOf(w dns.ResponseWriter) string {
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		return "tcp"
	}
	return "udp"
}

// ServeDNS logs and answers one query.
func (c *config) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	proto := protoOf(w)
	resp := new(dns.Msg)
	if len(req.Question) != 1 || req.Opcode != dns.OpcodeQuery {
		say("query %s - - %s", proto, w.RemoteAddr())
		if c.silent {
			return
		}
		resp.SetRcodeFormatError(req)
		c.reply(w, proto, req, resp)
		return
	}
	q := req.Question[0]
	say("query %s %s %s %s", proto, typeString(q.Qtype), q.Name, w.RemoteAddr())
	if c.silent {
		return
	}
	name := canonical(q.Name)
	if d := c.delay[name]; d > 0 {
		time.Sleep(d)
	}
	resp.SetReply(req)
	resp.RecursionAvailable = true
	resp.Authoritative = false
	switch rc, ok := c.rcode[name]; {
	case ok:
		resp.Rcode = rc
	case c.truncate[name] && proto == "udp":
		resp.Truncated = true
	default:
		c.answer(resp, q)
	}
	c.reply(w, proto, req, resp)
}

// answer fills resp with the records for q, following CNAMEs.
func (c *config) answer(resp *dns.Msg, q dns.Question) {
	name := canonical(q.Name)
	for range maxChain {
		rrs, known := c.zone[name]
		if !known {
			resp.Rcode = dns.RcodeNameError
			break
		}
		var cname *dns.CNAME
		for _, rr := range rrs {
			if cn, ok := rr.(*dns.CNAME); ok {
				cname = cn
			}
		}
		if cname != nil && q.Qtype != dns.TypeCNAME {
			resp.Answer = append(resp.Answer, dns.Copy(cname))
			name = canonical(cname.Target)
			continue
		}
		for _, rr := range rrs {
			if rr.Header().Rrtype == q.Qtype || q.Qtype == dns.TypeANY {
				resp.Answer = append(resp.Answer, dns.Copy(rr))
			}
		}
		break
	}
	if len(resp.Answer) == 0 || resp.Rcode == dns.RcodeNameError {
		resp.Ns = append(resp.Ns, soaFor(name))
	}
}

// soaFor makes up the SOA of name's top-level domain.
func soaFor(name string) dns.RR {
	labels := dns.SplitDomainName(name)
	apex := "."
	if len(labels) > 0 {
		apex = labels[len(labels)-1] + "."
	}
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: apex, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: negativeTTL},
		Ns:      "ns." + strings.TrimPrefix(apex, "."),
		Mbox:    "hostmaster." + strings.TrimPrefix(apex, "."),
		Serial:  1,
		Refresh: 3600,
		Retry:   600,
		Expire:  86400,
		Minttl:  negativeTTL,
	}
}

// reply sends resp: truncated to what the client can take over UDP (512
// bytes, or its EDNS buffer size), from the -reply-from socket if set.
func (c *config) reply(w dns.ResponseWriter, proto string, req, resp *dns.Msg) {
	if proto == "udp" {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = max(int(opt.UDPSize()), dns.MinMsgSize)
			resp.SetEdns0(opt.UDPSize(), false)
		}
		resp.Truncate(size)
	}
	if c.replyFrom != nil && proto == "udp" {
		b, err := resp.Pack()
		if err == nil {
			_, err = c.replyFrom.WriteTo(b, w.RemoteAddr())
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "dnsd: reply:", err)
		}
		return
	}
	if err := w.WriteMsg(resp); err != nil {
		fmt.Fprintln(os.Stderr, "dnsd: reply:", err)
	}
}

func typeString(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return "TYPE" + strconv.Itoa(int(t))
}
