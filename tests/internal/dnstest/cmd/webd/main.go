// Command webd is a small web server for tests: every request gets 200
// and the body "ok\n".
//
//	webd -http 10.231.0.2:8080 -https 10.231.0.2:8443 -cert FILE -key FILE
//
// -http and -https are repeatable or comma lists; -https needs -cert and
// -key (PEM). Once every listener is up, webd prints the line "ready"; then
// one line per request,
//
//	request SCHEME METHOD HOST PATH FROM
//
// (HOST as the client sent it, "-" if none). SIGTERM or SIGINT stops it.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

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

var stdout sync.Mutex

func say(format string, args ...any) {
	stdout.Lock()
	defer stdout.Unlock()
	fmt.Fprintf(os.Stdout, format+"\n", args...)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "webd:", err)
		os.Exit(1)
	}
}

func run() error {
	var plain, secure listFlag
	flag.Var(&plain, "http", "`ADDR:PORT` to serve HTTP on (repeatable, or a comma list)")
	flag.Var(&secure, "https", "`ADDR:PORT` to serve HTTPS on (repeatable, or a comma list)")
	certFile := flag.String("cert", "", "certificate chain `FILE` (PEM) for -https")
	keyFile := flag.String("key", "", "private key `FILE` (PEM) for -https")
	flag.Parse()
	if flag.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if len(plain)+len(secure) == 0 {
		return errors.New("no -http or -https address")
	}
	var tlsConfig *tls.Config
	if len(secure) > 0 {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			return fmt.Errorf("-cert/-key: %v", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}

	handler := func(scheme string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			host := r.Host
			if host == "" {
				host = "-"
			}
			say("request %s %s %s %s %s", scheme, r.Method, host, r.URL.Path, r.RemoteAddr)
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprint(w, "ok\n")
		})
	}
	var servers []*http.Server
	errc := make(chan error, len(plain)+len(secure))
	serve := func(addr, scheme string) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		if scheme == "https" {
			ln = tls.NewListener(ln, tlsConfig)
		}
		s := &http.Server{Handler: handler(scheme), ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, s)
		go func() { errc <- s.Serve(ln) }()
		return nil
	}
	for _, a := range plain {
		if err := serve(a, "http"); err != nil {
			return err
		}
	}
	for _, a := range secure {
		if err := serve(a, "https"); err != nil {
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
		_ = s.Shutdown(sctx)
		cancel()
	}
	return nil
}
