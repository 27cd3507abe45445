// Probe program for rt-env's differential tests (tests/go_diff.rs).
//
// Modes, chosen by the first argument:
//
//	procs      print "gomaxprocs=<runtime.GOMAXPROCS(0)> numcpu=<runtime.NumCPU()>"
//	env K...   print one line per key: "<K> <found 0|1> <hex of the value>",
//	           then one line per os.Environ() entry: "environ <hex of the entry>"
//	panic      start a goroutine that blocks in main.blocker, then panic, so the
//	           crash report shows what GOTRACEBACK asked for
//
// GODEBUG=inittrace=1 is observed from outside: the runtime prints "init ..."
// lines on stderr before main runs.
package main

import (
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"time"
)

var block = make(chan int)

func blocker() {
	<-block
}

func main() {
	if len(os.Args) < 2 {
		fmt.Println("usage: probe procs|env|panic")
		os.Exit(3)
	}
	switch os.Args[1] {
	case "procs":
		fmt.Printf("gomaxprocs=%d numcpu=%d\n", runtime.GOMAXPROCS(0), runtime.NumCPU())
	case "env":
		for _, k := range os.Args[2:] {
			key, err := hex.DecodeString(k)
			if err != nil {
				panic(err)
			}
			v, ok := os.LookupEnv(string(key))
			found := 0
			if ok {
				found = 1
			}
			fmt.Printf("%s %d %s\n", k, found, hex.EncodeToString([]byte(v)))
		}
		for _, e := range os.Environ() {
			fmt.Printf("environ %s\n", hex.EncodeToString([]byte(e)))
		}
	case "panic":
		go blocker()
		time.Sleep(50 * time.Millisecond)
		panic("probe")
	default:
		os.Exit(3)
	}
}
