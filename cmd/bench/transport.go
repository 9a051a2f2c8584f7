package main

import (
	"net"
	"net/http"
	"time"
)

// newTransport returns the one transport all clients share. Connections are
// kept for reuse, one or more per client, and never capped per host, so that
// after warm-up a request costs no dial. Timeouts are the transport's own
// rather than a context per request: the dial and the wait for the
// response's header are bounded by --timeout without allocating a timer and
// a context for each request.
func newTransport(clients int, timeout time.Duration) *http.Transport {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:       nil, // a benchmark measures the endpoints, not a proxy
		DialContext: d.DialContext,
		// Leader discovery and the apply wait use a few connections of
		// their own besides the clients'.
		MaxIdleConnsPerHost:   clients + 4,
		MaxConnsPerHost:       0,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: timeout,
		// Without this the transport asks for gzip and wraps each body in
		// a decompressor; the node's answers are a few bytes.
		DisableCompression: true,
	}
}
