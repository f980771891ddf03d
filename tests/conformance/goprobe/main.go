// Command goprobe is the conformance probe for Go's net package: it dials
// the way real Go programs do (non-blocking connect, epoll, SO_ERROR,
// deadlines, cancellation) and prints one line per case with addresses,
// ports and temporary paths normalized away.
//
// It expects the test network of tests/internal/nettest with the peer set up
// by conformance_test.go (see probes/probe.h).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	peerIP    = "10.231.0.2"
	peerIP6   = "fd00:231::2"
	noRouteIP = "10.232.0.1"
	portOpen  = "7"
	portDrop  = "9"
	portNet   = "10"
	portClose = "14"
)

var (
	addrRE = regexp.MustCompile(`(\[[0-9a-fA-F:.%]+\]|[0-9]+(\.[0-9]+){3}):[0-9]+`)
	tmpDir string
)

// normalize strips addresses, ports and the temporary directory.
func normalize(err error) string {
	if err == nil {
		return "<nil>"
	}
	s := addrRE.ReplaceAllString(err.Error(), "ADDR")
	if tmpDir != "" {
		s = strings.ReplaceAll(s, tmpDir, "DIR")
	}
	return s
}

// report prints a case: the normalized error, its errno and whether it is a
// timeout. (Whether a timeout also wraps os.ErrDeadlineExceeded depends on
// which of Go's two timers fires first, so it is not printed.)
func report(name string, err error, facts ...string) {
	line := name + ": err=" + normalize(err)
	var errno syscall.Errno
	if errors.As(err, &errno) {
		line += " errno=" + unix.ErrnoName(errno)
	}
	var ne net.Error
	if errors.As(err, &ne) {
		line += fmt.Sprintf(" timeout=%t", ne.Timeout())
	}
	if errors.Is(err, context.Canceled) {
		line += " canceled=true"
	}
	for _, f := range facts {
		line += " " + f
	}
	fmt.Println(line)
}

func dial(name, network, addr string, timeout time.Duration) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.Dial(network, addr)
	var facts []string
	if c != nil {
		facts = append(facts, fmt.Sprintf("remote_matches=%t", c.RemoteAddr().String() == addr))
		c.Close()
	}
	report(name, err, facts...)
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "goprobe setup:", err)
		os.Exit(2)
	}
}

// tarpit returns the address of a loopback listener whose backlog of 0 is
// full: SYNs to it are dropped, so dials hang.
func tarpit() (addr string, closeFn func()) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	must(err)
	must(unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	must(unix.Listen(fd, 0))
	sa, err := unix.Getsockname(fd)
	must(err)
	addr = fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port)
	filler, err := net.Dial("tcp", addr)
	must(err)
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(pfd, 5000)
		if err == unix.EINTR {
			continue
		}
		must(err)
		if n != 1 {
			must(errors.New("tarpit filler not queued"))
		}
		break
	}
	return addr, func() { filler.Close(); unix.Close(fd) }
}

// closedPort returns a loopback address where nothing listens.
func closedPort() (addr string, closeFn func()) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	must(err)
	must(unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	sa, err := unix.Getsockname(fd)
	must(err)
	return fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port), func() { unix.Close(fd) }
}

func accept(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

func tcp() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer l.Close()
	go accept(l)
	dial("go.tcp_listener", "tcp", l.Addr().String(), 0)

	l6, err := net.Listen("tcp6", "[::1]:0")
	must(err)
	defer l6.Close()
	go accept(l6)
	dial("go.tcp6_listener", "tcp", l6.Addr().String(), 0)

	closed, closeFn := closedPort()
	dial("go.tcp_refused", "tcp", closed, 0)
	closeFn()

	pit, closePit := tarpit()
	dial("go.tcp_tarpit_timeout", "tcp", pit, 300*time.Millisecond)
	{
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", pit)
		if c != nil {
			c.Close()
		}
		report("go.tcp_tarpit_cancel", err)
	}
	{
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", pit)
		cancel()
		if c != nil {
			c.Close()
		}
		report("go.tcp_tarpit_context_deadline", err)
	}
	closePit()

	dial("go.tcp_no_route", "tcp", net.JoinHostPort(noRouteIP, "80"), 0)
	dial("go.tcp_remote_open", "tcp", net.JoinHostPort(peerIP, portOpen), 0)
	dial("go.tcp6_remote_open", "tcp", net.JoinHostPort(peerIP6, portOpen), 0)
	dial("go.tcp_remote_closed", "tcp", net.JoinHostPort(peerIP, portClose), 0)
	dial("go.tcp_remote_net_unreachable", "tcp", net.JoinHostPort(peerIP, portNet), 0)
	dial("go.tcp_remote_silent", "tcp", net.JoinHostPort(peerIP, portDrop), 300*time.Millisecond)

	// A local address chosen by the dialer.
	{
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
		c, err := d.Dial("tcp", l.Addr().String())
		local := ""
		if c != nil {
			local = "local=" + c.LocalAddr().(*net.TCPAddr).IP.String()
			c.Close()
		}
		report("go.tcp_local_addr", err, local)
	}

	// Many goroutines at once.
	{
		const n = 100
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.Dial("tcp", l.Addr().String())
				if c != nil {
					c.Close()
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			}
		}
		fmt.Printf("go.tcp_parallel: ok=%d of=%d\n", ok, n)
	}
}

func udp() {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	must(err)
	c, err := net.Dial("udp", pc.LocalAddr().String())
	report("go.udp_dial", err)
	if c != nil {
		_, werr := c.Write([]byte("x"))
		buf := make([]byte, 8)
		pc.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, _, rerr := pc.ReadFrom(buf)
		report("go.udp_write", werr, "server_read="+normalize(rerr))
		c.Close()
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	// Nothing listens now: the ICMP error comes back on the next read.
	c, err = net.Dial("udp", addr)
	report("go.udp_dial_closed", err)
	if c != nil {
		c.Write([]byte("x"))
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, rerr := c.Read(make([]byte, 8))
		report("go.udp_read_refused", rerr)
		c.Close()
	}
	dial("go.udp_no_route", "udp", net.JoinHostPort(noRouteIP, "53"), 0)
}

func unixSockets() {
	l, err := net.Listen("unix", filepath.Join(tmpDir, "s.sock"))
	must(err)
	defer l.Close()
	go accept(l)
	dial("go.unix_listener", "unix", filepath.Join(tmpDir, "s.sock"), 0)
	dial("go.unix_missing", "unix", filepath.Join(tmpDir, "missing.sock"), 0)
	dial("go.unixgram_to_stream", "unixgram", filepath.Join(tmpDir, "s.sock"), 0)
	dial("go.unixpacket_to_stream", "unixpacket", filepath.Join(tmpDir, "s.sock"), 0)
	dial("go.unix_abstract_missing", "unix", "@sbxt-goprobe-missing", 0)

	la, err := net.Listen("unix", "@sbxt-goprobe")
	must(err)
	defer la.Close()
	go accept(la)
	dial("go.unix_abstract", "unix", "@sbxt-goprobe", 0)
}

func httpGet() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	})}
	go srv.Serve(l)
	defer srv.Close()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + l.Addr().String() + "/")
	if err != nil {
		report("go.http_get", err)
		return
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	report("go.http_get", err, fmt.Sprintf("status=%d body=%s", resp.StatusCode, body))
}

func main() {
	dir, err := os.MkdirTemp("", "sbxgoprobe-")
	must(err)
	tmpDir = dir
	defer os.RemoveAll(dir)

	tcp()
	udp()
	unixSockets()
	httpGet()
}
