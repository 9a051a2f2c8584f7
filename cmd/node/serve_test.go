package main

import (
	"net"
	"testing"
)

// countingListener counts the closes that reach it.
type countingListener struct {
	net.Listener
	closes int
}

func (l *countingListener) Close() error {
	l.closes++
	if l.closes > 1 {
		return net.ErrClosed
	}
	return nil
}

// The listener cmux's listeners share is closed once, whoever closes it
// first (the gRPC server's stop, the HTTP server's shutdown, cmux): the
// others hear nil, not "use of closed network connection".
func TestCloseOnce(t *testing.T) {
	inner := &countingListener{}
	l := &closeOnce{Listener: inner}
	for i := range 3 {
		if err := l.Close(); err != nil {
			t.Fatalf("close %d: %v", i+1, err)
		}
	}
	if inner.closes != 1 {
		t.Fatalf("the listener was closed %d times, want 1", inner.closes)
	}
}
