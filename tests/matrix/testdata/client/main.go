// Command client is the sample program of the matrix tests: it fetches
// http://web.test:8080/ (or the URL's host:port given as its argument),
// with a 3 s connect timeout and a 3 s read timeout, retries once when the
// connection is reset, and gives up on a timeout. Its exit status says how
// it ended:
//
//	0  success: prints "ok", or "ok after retry"
//	2  connection refused
//	3  timeout (connect or read)
//	4  network or host unreachable
//	5  reset twice (the retry was reset too)
//	6  anything else
package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

const timeout = 3 * time.Second

func main() {
	addr := "web.test:8080"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	err := fetch(addr)
	if isReset(err) {
		fmt.Fprintf(os.Stderr, "client: %v: retrying once\n", err)
		if err = fetch(addr); err == nil {
			fmt.Println("ok after retry")
			return
		}
		if isReset(err) {
			fmt.Fprintf(os.Stderr, "client: reset again: %v\n", err)
			os.Exit(5)
		}
	}
	if err == nil {
		fmt.Println("ok")
		return
	}
	fmt.Fprintf(os.Stderr, "client: %v\n", err)
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		os.Exit(2)
	case errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		os.Exit(3)
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		os.Exit(4)
	}
	os.Exit(6)
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// fetch makes one HTTP/1.0 request and reads the whole reply.
func fetch(addr string) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	host, _, _ := net.SplitHostPort(addr)
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\nHost: "+host+"\r\n\r\n"); err != nil {
		return err
	}
	reply, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(string(reply), "HTTP/1.") || !strings.Contains(strings.SplitN(string(reply), "\n", 2)[0], " 200 ") {
		return fmt.Errorf("unexpected reply %q", reply)
	}
	return nil
}
