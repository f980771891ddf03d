// Command demoserver is the demo's fallback HTTP server, used by
// bench/demo.sh when python3 is missing. It listens on 127.0.0.1 only, on
// the given port (0: a free one), announces the port the way
// `python3 -m http.server` does, and stops by itself after -lifetime.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	port := flag.Int("port", 0, "port on 127.0.0.1; 0 picks a free one")
	dir := flag.String("dir", ".", "directory to serve")
	lifetime := flag.Duration("lifetime", 5*time.Minute, "exit after this long")
	flag.Parse()

	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		log.Fatal(err)
	}
	p := ln.Addr().(*net.TCPAddr).Port
	fmt.Printf("Serving HTTP on 127.0.0.1 port %d (http://127.0.0.1:%d/) ...\n", p, p)
	os.Stdout.Sync()

	time.AfterFunc(*lifetime, func() { os.Exit(0) })
	srv := &http.Server{Handler: http.FileServer(http.Dir(*dir)), ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}
