// Command floor measures the latency floor of one durable write on this
// machine, for BENCHMARKS.md's one-client target: the fsync of a small WAL
// append (the leader's and a follower's overlap, so one counts) plus two
// loopback round trips (the client to the leader, the leader to a follower
// and back). It prints the median and p90 of each part and their sum.
//
//	go run ./scripts/floor [-dir DIR]   # DIR: where the data dirs live (default: the temp dir)
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"time"
)

func main() {
	dir := flag.String("dir", os.TempDir(), "directory on the file system the members write to")
	syncs := flag.Int("syncs", 2000, "appends to time")
	trips := flag.Int("trips", 20000, "round trips to time")
	flag.Parse()
	fs, err := fsyncs(*dir, *syncs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
	rt, err := roundTrips(*trips)
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
	p := func(d []time.Duration, q float64) time.Duration { return d[int(q*float64(len(d)-1))] }
	fmt.Printf("fsync of a 512-byte append: p50 %v, p90 %v\n", p(fs, .5), p(fs, .9))
	fmt.Printf("loopback TCP round trip of 100 bytes: p50 %v, p90 %v\n", p(rt, .5), p(rt, .9))
	fmt.Printf("floor (fsync + 2 round trips), p50: %v\n", p(fs, .5)+2*p(rt, .5))
}

// fsyncs times n appends of 512 bytes to a file in dir, each followed by
// fdatasync, as the WAL makes one small entry durable.
func fsyncs(dir string, n int) ([]time.Duration, error) {
	f, err := os.CreateTemp(dir, "floor-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 512)
	out := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if _, err := f.Write(buf); err != nil {
			return nil, err
		}
		if err := f.Sync(); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	slices.Sort(out)
	return out, nil
}

// roundTrips times n exchanges of 100 bytes with an echo server on
// 127.0.0.1, one in flight at a time.
func roundTrips(n int) ([]time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	buf := make([]byte, 100)
	out := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if _, err := c.Write(buf); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	slices.Sort(out)
	return out, nil
}
