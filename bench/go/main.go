// Command rtbench is the Go column of rt-bench: one program that runs one
// workload once and prints one result line, with the same protocol as the
// Rust peer binaries.
//
// Usage: rtbench <workload> [key=value ...]
//
// Workloads (see DESIGN.md, "Performance"):
//
//	boot      print one line and exit (the harness times the process)
//	spawn     n goroutines each bump an atomic; the last one closes a channel
//	pingpong  n round trips between two goroutines over unbuffered channels
//	yield     two goroutines alternate with runtime.Gosched, n each
//	parked    n goroutines blocked on a channel receive; RSS delta / n
//	tree      Skynet: a tree of n leaf goroutines (n a power of ten), ten
//	          children per node, each node's children sending to it over
//	          one unbuffered channel; wall time / goroutines created
//	serve-echo  a TCP echo server: prints listening=<addr>, then serves
//	          until killed (the harness drives it with net-client)
//	serve-http  net/http answering "Hello, World!" on /, driven by wrk
//	fanout    one producer sends 0..n-1 over a channel of capacity cap to
//	          workers goroutines, which send 2v+1 on to the collector (the
//	          main goroutine) over a second one; wall time / n
//	preempt   one goroutine per P spins on an atomic flag while the main
//	          goroutine sleeps 1 ms n times; p50 and p99 of the ticks'
//	          lateness (wake time minus due time), one line each
//	blockcall readers goroutines each block in syscall.Read on its own
//	          empty pipe; once all have started, n round trips between two
//	          goroutines over unbuffered channels; then one byte into each
//	          pipe ends the readers; ping-pong wall time / n
//	blockpipe pairs pairs of goroutines pass a byte back and forth n times
//	          over two blocking pipes with syscall.Read and syscall.Write;
//	          wall time / (pairs * n)
//
// Keys: n=<count>, gomaxprocs=<procs> (calls runtime.GOMAXPROCS before the
// workload starts; the harness also sets GOMAXPROCS in the environment),
// for fanout workers=<count> (default 4) and cap=<capacity> (default
// 128), for blockcall readers=<count> (default 8), for blockpipe
// pairs=<count> (default 4).
//
// Output: exactly one line, `value=<number> unit=<unit>`, or
// `value=none reason=<text>` for a workload this program does not run or
// for bad input (exit status 2). preempt prints one value line per
// statistic instead, tagged at the end: `value=<number> unit=ns stat=p50`
// and `... stat=p99`.
package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Println("value=none reason=usage: rtbench <workload> [key=value ...]")
		os.Exit(2)
	}
	keys := map[string]string{}
	for _, a := range os.Args[2:] {
		i := strings.IndexByte(a, '=')
		if i <= 0 {
			fmt.Printf("value=none reason=bad argument %q (want key=value)\n", a)
			os.Exit(2)
		}
		keys[a[:i]] = a[i+1:]
	}
	n := intKey(keys, "n", 1000000)
	if p := intKey(keys, "gomaxprocs", 0); p > 0 {
		runtime.GOMAXPROCS(p)
	}
	switch os.Args[1] {
	case "boot":
		fmt.Println("hello from go")
	case "spawn":
		report(float64(spawn(n).Nanoseconds())/float64(n), "ns")
	case "pingpong":
		report(float64(pingpong(n).Nanoseconds())/float64(n), "ns")
	case "yield":
		report(float64(yield(n).Nanoseconds())/float64(2*n), "ns")
	case "parked":
		report(parked(n), "B")
	case "tree":
		nodes := treeNodes(n)
		if nodes == 0 {
			fmt.Printf("value=none reason=tree n=%d is not a power of 10 up to 100000000\n", n)
			os.Exit(2)
		}
		el, sum := tree(n)
		if want := uint64(n) * uint64(n-1) / 2; sum != want {
			fmt.Printf("value=none reason=tree sum %d, expected %d\n", sum, want)
			os.Exit(2)
		}
		report(float64(el.Nanoseconds())/float64(nodes), "ns")
	case "fanout":
		workers := intKey(keys, "workers", 4)
		capacity := intKey(keys, "cap", 128)
		if workers > 1024 || capacity > 1<<20 {
			fmt.Println("value=none reason=workers must be at most 1024 and cap at most 1048576")
			os.Exit(2)
		}
		el, sum := fanout(n, workers, capacity)
		if want := uint64(n) * uint64(n); sum != want {
			fmt.Printf("value=none reason=fanout sum %d, expected %d\n", sum, want)
			os.Exit(2)
		}
		report(float64(el.Nanoseconds())/float64(n), "ns")
	case "preempt":
		if n > 1000000 {
			fail("preempt n must be in 1..=1000000")
		}
		late := preempt(n)
		for _, pct := range []int{50, 99} {
			ns := float64(late[rankIndex(n, pct)].Nanoseconds())
			fmt.Printf("value=%.3f unit=ns stat=p%d\n", ns, pct)
		}
	case "blockcall":
		readers := intKey(keys, "readers", 8)
		if readers > 1024 {
			fail("blockcall needs n >= 1 and readers in 1..=1024")
		}
		report(float64(blockcall(n, readers).Nanoseconds())/float64(n), "ns")
	case "blockpipe":
		pairs := intKey(keys, "pairs", 4)
		if pairs > 1024 {
			fail("blockpipe needs n >= 1 and pairs in 1..=1024")
		}
		report(float64(blockpipe(n, pairs).Nanoseconds())/float64(n*pairs), "ns")
	case "serve-echo":
		serveEcho()
	case "serve-http":
		serveHTTP()
	default:
		fmt.Printf("value=none reason=workload %s not implemented for go\n", os.Args[1])
	}
}

// intKey reads a positive integer key, exiting with status 2 on a bad value.
func intKey(keys map[string]string, k string, def int) int {
	v, ok := keys[k]
	if !ok {
		return def
	}
	x, err := strconv.Atoi(v)
	if err != nil || x <= 0 {
		fmt.Printf("value=none reason=bad %s=%q\n", k, v)
		os.Exit(2)
	}
	return x
}

func report(v float64, unit string) {
	fmt.Printf("value=%.3f unit=%s\n", v, unit)
}

// spawn starts n goroutines; each bumps a shared counter and the one that
// brings it to n closes done.
func spawn(n int) time.Duration {
	var count int64
	done := make(chan struct{})
	start := time.Now()
	for i := 0; i < n; i++ {
		go func() {
			if atomic.AddInt64(&count, 1) == int64(n) {
				close(done)
			}
		}()
	}
	<-done
	return time.Since(start)
}

// pingpong measures n round trips: main sends on ping, the partner answers
// on pong; both channels are unbuffered.
func pingpong(n int) time.Duration {
	ping := make(chan int)
	pong := make(chan int)
	go func() {
		for v := range ping {
			pong <- v
		}
	}()
	start := time.Now()
	for i := 0; i < n; i++ {
		ping <- i
		<-pong
	}
	el := time.Since(start)
	close(ping)
	return el
}

// yield runs two goroutines that each call Gosched n times.
func yield(n int) time.Duration {
	var wg sync.WaitGroup
	wg.Add(2)
	startGate := make(chan struct{})
	for g := 0; g < 2; g++ {
		go func() {
			<-startGate
			for i := 0; i < n; i++ {
				runtime.Gosched()
			}
			wg.Done()
		}()
	}
	start := time.Now()
	close(startGate)
	wg.Wait()
	return time.Since(start)
}

// parked blocks n goroutines on one channel and returns the growth of the
// resident set per goroutine, in bytes.
func parked(n int) float64 {
	release := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(n)
	before := rss()
	for i := 0; i < n; i++ {
		go func() {
			wg.Done()
			<-release
		}()
	}
	wg.Wait()
	runtime.Gosched()
	after := rss()
	close(release)
	return float64(after-before) / float64(n)
}

// treeNodes returns the number of goroutines a tree of leaves leaves
// creates, root included (1 + 10 + ... + leaves), or 0 unless leaves is a
// power of 10 up to 10^8.
func treeNodes(leaves int) int {
	level, total := 1, 1
	for level < leaves && level < 100000000 {
		level *= 10
		total += level
	}
	if level != leaves {
		return 0
	}
	return total
}

// skynet is one node of the tree: a leaf sends its number, an inner node
// starts its ten children on one unbuffered channel and sends their sum.
func skynet(c chan uint64, num, size int) {
	if size == 1 {
		c <- uint64(num)
		return
	}
	rc := make(chan uint64)
	step := size / 10
	for i := 0; i < 10; i++ {
		go skynet(rc, num+i*step, step)
	}
	var sum uint64
	for i := 0; i < 10; i++ {
		sum += <-rc
	}
	c <- sum
}

// tree runs skynet from a root goroutine and returns the wall time and the
// root's sum.
func tree(leaves int) (time.Duration, uint64) {
	c := make(chan uint64)
	start := time.Now()
	go skynet(c, 0, leaves)
	sum := <-c
	return time.Since(start), sum
}

// fanout sends 0..n-1 from one producer to workers goroutines over a
// channel of capacity capacity; each worker sends 2v+1 to the main
// goroutine over a second channel of the same capacity, which sums n values.
func fanout(n, workers, capacity int) (time.Duration, uint64) {
	in := make(chan uint64, capacity)
	out := make(chan uint64, capacity)
	start := time.Now()
	go func() {
		for i := 0; i < n; i++ {
			in <- uint64(i)
		}
		close(in)
	}()
	for w := 0; w < workers; w++ {
		go func() {
			for v := range in {
				out <- 2*v + 1
			}
		}()
	}
	var sum uint64
	for i := 0; i < n; i++ {
		sum += <-out
	}
	return time.Since(start), sum
}

// rss reads the resident set size in bytes from /proc/self/statm.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		fmt.Printf("value=none reason=cannot read /proc/self/statm: %v\n", err)
		os.Exit(2)
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		fmt.Println("value=none reason=short /proc/self/statm")
		os.Exit(2)
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		fmt.Println("value=none reason=bad /proc/self/statm")
		os.Exit(2)
	}
	return pages * int64(os.Getpagesize())
}

// fail prints a value=none line with the reason and exits with status 2.
func fail(format string, a ...interface{}) {
	fmt.Printf("value=none reason="+format+"\n", a...)
	os.Exit(2)
}

// spinSink keeps the spinners' arithmetic alive.
var spinSink uint64

// rankIndex is the index of the pct-th percentile in a sorted list of n
// samples (nearest rank: the ceil(pct*n/100)-th smallest).
func rankIndex(n, pct int) int {
	return (pct*n+99)/100 - 1
}

// preempt starts one goroutine per P that spins (arithmetic and an atomic
// load, no calls) until stopped, then sleeps 1 ms ticks times; a tick's
// lateness is the time it woke minus the time it was due (monotonic
// clock). Returns the lateness of every tick, sorted.
func preempt(ticks int) []time.Duration {
	procs := runtime.GOMAXPROCS(0)
	var stop, started int32
	var wg sync.WaitGroup
	wg.Add(procs)
	for i := 0; i < procs; i++ {
		go func() {
			defer wg.Done()
			atomic.AddInt32(&started, 1)
			x := uint64(0)
			for atomic.LoadInt32(&stop) == 0 {
				x = x*6364136223846793005 + 1
			}
			atomic.AddUint64(&spinSink, x)
		}()
	}
	for atomic.LoadInt32(&started) < int32(procs) {
		runtime.Gosched()
	}
	late := make([]time.Duration, ticks)
	for i := range late {
		due := time.Now().Add(time.Millisecond)
		time.Sleep(time.Millisecond)
		if d := time.Since(due); d > 0 {
			late[i] = d
		}
	}
	atomic.StoreInt32(&stop, 1)
	wg.Wait()
	sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
	return late
}

// pipe2 makes a pipe with blocking ends (O_CLOEXEC only): read, write.
func pipe2() (int, int) {
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC); err != nil {
		fail("pipe2: %v", err)
	}
	return fds[0], fds[1]
}

// retryEINTR makes the system call call until it fails with something
// other than EINTR.
func retryEINTR(call func() (int, error)) (int, error) {
	for {
		n, err := call()
		if err != syscall.EINTR {
			return n, err
		}
	}
}

// sendByte writes b to fd with the raw write system call.
func sendByte(fd int, b byte) {
	buf := [1]byte{b}
	n, err := retryEINTR(func() (int, error) { return syscall.Write(fd, buf[:]) })
	if err != nil || n != 1 {
		fail("pipe write: %d %v", n, err)
	}
}

// expectByte reads one byte from fd with the raw read system call and
// checks that it is want.
func expectByte(fd int, want byte) {
	var buf [1]byte
	n, err := retryEINTR(func() (int, error) { return syscall.Read(fd, buf[:]) })
	if err != nil || n != 1 {
		fail("pipe read: %d %v", n, err)
	}
	if buf[0] != want {
		fail("pipe read: byte %d, expected %d", buf[0], want)
	}
}

// pipe is the two ends of one pipe.
type pipe struct{ r, w int }

// closePipes closes both ends of every pipe.
func closePipes(ps []pipe) {
	for _, p := range ps {
		syscall.Close(p.r)
		syscall.Close(p.w)
	}
}

// blockcall starts readers goroutines that each block in syscall.Read (a
// plain system call, no netpoller) on the read end of its own empty pipe,
// so each leaves its P to sysmon to take. Once all have started, the main
// goroutine and an echo goroutine make n round trips over two unbuffered
// channels. Then one byte goes into each pipe and the readers are waited
// for. Every echoed value, the echo's round-trip count and every reader's
// byte are checked. Returns the wall time of the round trips.
func blockcall(n, readers int) time.Duration {
	pipes := make([]pipe, readers)
	for i := range pipes {
		pipes[i].r, pipes[i].w = pipe2()
	}
	var started int32
	var wg sync.WaitGroup
	wg.Add(readers)
	for i := range pipes {
		go func(i int) {
			defer wg.Done()
			atomic.AddInt32(&started, 1)
			expectByte(pipes[i].r, byte(i))
		}(i)
	}
	for atomic.LoadInt32(&started) < int32(readers) {
		runtime.Gosched()
	}
	ping := make(chan int)
	pong := make(chan int)
	trips := make(chan int)
	go func() {
		k := 0
		for v := range ping {
			pong <- v + 1
			k++
		}
		trips <- k
	}()
	start := time.Now()
	for i := 0; i < n; i++ {
		ping <- i
		if v := <-pong; v != i+1 {
			fail("blockcall: echo sent %d, expected %d", v, i+1)
		}
	}
	el := time.Since(start)
	close(ping)
	if k := <-trips; k != n {
		fail("blockcall: %d round trips, expected %d", k, n)
	}
	for i := range pipes {
		sendByte(pipes[i].w, byte(i))
	}
	wg.Wait()
	closePipes(pipes)
	return el
}

// blockpipe runs pairs pairs of goroutines; in each, one writes a byte to
// its ping pipe and reads it back from its pong pipe n times while its
// partner reads each byte from ping and writes it to pong. syscall.Read
// and syscall.Write are plain blocking system calls (no netpoller): a
// goroutine blocked in one leaves its P to sysmon to take. Returns the
// wall time of all round trips.
func blockpipe(n, pairs int) time.Duration {
	pings := make([]pipe, pairs)
	pongs := make([]pipe, pairs)
	for i := range pings {
		pings[i].r, pings[i].w = pipe2()
		pongs[i].r, pongs[i].w = pipe2()
	}
	var wg sync.WaitGroup
	wg.Add(2 * pairs)
	start := time.Now()
	// The first side of a pair writes each byte to ping and reads it back
	// from pong; its partner reads it from ping and writes it to pong.
	side := func(first bool, r, w int) {
		defer wg.Done()
		for k := 0; k < n; k++ {
			if first {
				sendByte(w, byte(k))
			}
			expectByte(r, byte(k))
			if !first {
				sendByte(w, byte(k))
			}
		}
	}
	for i := range pings {
		go side(true, pongs[i].r, pings[i].w)
		go side(false, pings[i].r, pongs[i].w)
	}
	wg.Wait()
	el := time.Since(start)
	closePipes(pings)
	closePipes(pongs)
	return el
}
