package transport

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// TestDeadlineConnWaitsWhileWriting: a read waiting for the answer does
// not time out while the request is still being written (net/http reads a
// client connection from the moment it is dialled), and does once nothing
// was written for the answer timeout.
func TestDeadlineConnWaitsWhileWriting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
		_, _ = io.Copy(io.Discard, c) // a peer that reads and never answers
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	srv := <-accepted
	defer srv.Close()
	const read, answer = 100 * time.Millisecond, 500 * time.Millisecond
	c := &deadlineConn{Conn: raw, read: read, write: time.Second, answer: answer}
	defer c.Close()

	type result struct {
		err error
		at  time.Time
	}
	done := make(chan result, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		done <- result{err, time.Now()}
	}()
	// Write for many read timeouts, at a pace well inside the answer
	// timeout: the pending read must outlast all of it.
	var last time.Time
	for range 40 {
		if _, err := c.Write([]byte{'x'}); err != nil {
			t.Fatal(err)
		}
		last = time.Now()
		select {
		case r := <-done:
			t.Fatalf("the read ended while writes kept going: %v", r.err)
		default:
		}
		time.Sleep(read / 4) // paces the writes
	}
	select {
	case r := <-done:
		if !errors.Is(r.err, os.ErrDeadlineExceeded) {
			t.Fatalf("read ended with %v, want a timeout", r.err)
		}
		if quiet := r.at.Sub(last); quiet < answer {
			t.Fatalf("read timed out %v after the last write, before the %v answer timeout", quiet, answer)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the read never timed out")
	}
}
