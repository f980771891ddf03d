// Command goresolve resolves a name with Go's own resolver (never glibc's)
// and fetches http://NAME:PORT/ from the first IPv4 address.
//
//	goresolve NAME PORT
//
// It prints the addresses, sorted, one per line as "addr IP"; then dials
// the first IPv4 address (the first address if there is none) over TCP
// with a 3 s timeout, sends "GET / HTTP/1.0" with Host: NAME, prints the
// first line of the response and exits 0.
//
// Failures: "resolve error: KIND: ERR" and exit 2, where KIND is notfound,
// timeout, temporary or other, from the *net.DNSError; "dial error: ERRNO:
// ERR" and exit 3, where ERRNO is the errno's name (ECONNREFUSED, ...) or
// timeout; "read error: ERR" and exit 4 when the response cannot be read.
//
// Besides PreferGo, the binary defaults to GODEBUG=netdns=go, so that no
// other lookup (such as the resolver's own configuration) goes to glibc.
//
//go:debug netdns=go
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: goresolve NAME PORT")
		os.Exit(1)
	}
	name, port := os.Args[1], os.Args[2]

	// The resolver's own timeouts (resolv.conf's timeout and attempts)
	// apply; this only bounds the whole.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := &net.Resolver{PreferGo: true}
	ips, err := r.LookupNetIP(ctx, "ip", name)
	if err != nil {
		fmt.Printf("resolve error: %s: %v\n", resolveKind(err), err)
		os.Exit(2)
	}
	for i := range ips {
		ips[i] = ips[i].Unmap()
	}
	slices.SortFunc(ips, netip.Addr.Compare)
	ips = slices.Compact(ips)
	for _, ip := range ips {
		fmt.Printf("addr %s\n", ip)
	}
	target := ips[0]
	if i := slices.IndexFunc(ips, netip.Addr.Is4); i >= 0 {
		target = ips[i]
	}

	d := net.Dialer{Timeout: 3 * time.Second}
	conn, err := d.Dial("tcp", net.JoinHostPort(target.String(), port))
	if err != nil {
		fmt.Printf("dial error: %s: %v\n", dialKind(err), err)
		os.Exit(3)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", name); err != nil {
		fmt.Printf("read error: %v\n", err)
		os.Exit(4)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		fmt.Printf("read error: %v\n", err)
		os.Exit(4)
	}
	fmt.Println(strings.TrimRight(line, "\r\n"))
}

func resolveKind(err error) string {
	var de *net.DNSError
	switch {
	case !errors.As(err, &de):
		return "other"
	case de.IsNotFound:
		return "notfound"
	case de.IsTimeout:
		return "timeout"
	case de.IsTemporary:
		return "temporary"
	}
	return "other"
}

func dialKind(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if n := unix.ErrnoName(errno); n != "" {
			return n
		}
		return errno.Error()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return "other"
}
