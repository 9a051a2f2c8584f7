package faults

import (
	"errors"
	"fmt"
	"net"
)

// FreePorts returns n distinct TCP ports on 127.0.0.1 that were free a
// moment ago. Every listener stays open until all n are picked, so the
// kernel cannot hand out one port twice; a process started afterwards can
// still lose a port to another, which tests accept as rare.
func FreePorts(n int) ([]int, error) {
	lns := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		lns = append(lns, ln)
		addr, ok := ln.Addr().(*net.TCPAddr)
		if !ok {
			return nil, errors.New("free port: listener has no TCP address")
		}
		ports = append(ports, addr.Port)
	}
	return ports, nil
}
