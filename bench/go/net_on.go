//go:build rtbench_net

// The network workloads' servers, built only into rtbench-net (go build
// -tags rtbench_net): importing net/http into the scheduler program would
// add its package initialisation to every run, the boot workload's above
// all.

package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
)

// listen binds a loopback port and prints it for the harness.
func listen() net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Printf("value=none reason=listen: %v\n", err)
		os.Exit(2)
	}
	fmt.Printf("listening=%s\n", l.Addr())
	return l
}

// serveEcho echoes every connection's bytes back, one goroutine each.
func serveEcho() {
	l := listen()
	for {
		c, err := l.Accept()
		if err != nil {
			continue
		}
		go func(c net.Conn) {
			defer c.Close()
			buf := make([]byte, 4096)
			for {
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
		}(c)
	}
}

// serveHTTP answers "Hello, World!" on / with net/http.
func serveHTTP() {
	l := listen()
	hello := []byte("Hello, World!")
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Write(hello)
	})
	http.Serve(l, mux)
}
