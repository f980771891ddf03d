// Command dial is a Go client for the verdict tests.
//
//	dial ADDR TIMEOUT   net.DialTimeout, then GET / ; prints the outcome
//	dial serve ADDR     an HTTP server answering "hello"; prints "ready"
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "serve" {
		l, err := net.Listen("tcp", os.Args[2])
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println("ready")
		http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello") }))
		return
	}
	d, _ := time.ParseDuration(os.Args[2])
	start := time.Now()
	c, err := net.DialTimeout("tcp", os.Args[1], d)
	took := time.Since(start).Round(100 * time.Millisecond)
	if err != nil {
		fmt.Printf("error after %v: %v\n", took, err)
		return
	}
	fmt.Fprintf(c, "GET / HTTP/1.0\r\n\r\n")
	body, _ := io.ReadAll(c)
	fmt.Printf("connected to %v: %q\n", c.RemoteAddr(), string(body[len(body)-5:]))
}
