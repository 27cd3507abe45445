//go:build !rtbench_net

package main

import (
	"fmt"
	"os"
)

// The servers live in rtbench-net (see net_on.go).
func serveEcho() { noServers() }
func serveHTTP() { noServers() }

func noServers() {
	fmt.Println("value=none reason=the servers are built into rtbench-net (go build -tags rtbench_net)")
	os.Exit(2)
}
