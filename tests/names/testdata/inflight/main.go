// Command inflight answers its own lookup of NAME through a resolver
// address it listens on, with its listener hidden from any "who holds this
// socket" check: while the supervisor's forwarder looks, the listener is in
// flight in an SCM_RIGHTS message, held by no process. It then connects to
// the address it gave NAME and prints "connected" or the error.
//
//	inflight RESOLVER-IP NAME TARGET-IP:PORT
package main

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

func die(what string, err error) {
	fmt.Println(what+":", err)
	os.Exit(2)
}

func main() {
	resolver, name, target := os.Args[1], dns.Fqdn(os.Args[2]), netip.MustParseAddrPort(os.Args[3])
	lfd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		die("socket", err)
	}
	syscall.SetsockoptInt(lfd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1) // earlier runs' TIME_WAIT
	if err := syscall.Bind(lfd, &syscall.SockaddrInet4{Port: 53, Addr: netip.MustParseAddr(resolver).As4()}); err != nil {
		die("bind", err)
	}
	if err := syscall.Listen(lfd, 8); err != nil {
		die("listen", err)
	}
	sp, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_DGRAM, 0)
	if err != nil {
		die("socketpair", err)
	}
	if err := syscall.Sendmsg(sp[0], []byte{0}, syscall.UnixRights(lfd), nil, 0); err != nil {
		die("sendmsg", err)
	}
	syscall.Close(lfd)
	// The lookup, over TCP to the resolver address: redirected to the
	// forwarder's front, which connects on to the hidden listener.
	c, err := net.DialTimeout("tcp", resolver+":53", 3*time.Second)
	if err != nil {
		die("dial resolver", err)
	}
	var q dns.Msg
	q.SetQuestion(name, dns.TypeA)
	wire, _ := q.Pack()
	go func() { c.Write(append([]byte{byte(len(wire) >> 8), byte(len(wire))}, wire...)) }()
	// Take the listener back and answer as the resolver.
	buf, oob := make([]byte, 1), make([]byte, 64)
	_, oobn, _, _, err := syscall.Recvmsg(sp[1], buf, oob, 0)
	if err != nil {
		die("recvmsg", err)
	}
	msgs, _ := syscall.ParseSocketControlMessage(oob[:oobn])
	fds, _ := syscall.ParseUnixRights(&msgs[0])
	ln, err := net.FileListener(os.NewFile(uintptr(fds[0]), "listener"))
	if err != nil {
		die("listener", err)
	}
	s, err := ln.Accept()
	if err != nil {
		die("accept", err)
	}
	var l [2]byte
	io.ReadFull(s, l[:])
	in := make([]byte, int(l[0])<<8|int(l[1]))
	io.ReadFull(s, in)
	var got dns.Msg
	got.Unpack(in)
	var a dns.Msg
	a.SetReply(&got)
	rr, _ := dns.NewRR(fmt.Sprintf("%s 86400 IN A %s", name, target.Addr()))
	a.Answer = append(a.Answer, rr)
	out, _ := a.Pack()
	s.Write(append([]byte{byte(len(out) >> 8), byte(len(out))}, out...))
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	io.ReadFull(c, l[:])
	io.ReadFull(c, make([]byte, int(l[0])<<8|int(l[1])))
	conn, err := net.DialTimeout("tcp", target.String(), 3*time.Second)
	if err != nil {
		fmt.Println("connect:", err)
		return
	}
	conn.Close()
	fmt.Println("connected")
}
