package main

import (
	"net"
	"net/http"
	"time"

	"github.com/raftkv/node/tlsfiles"
)

// newTransport returns the one transport all clients share. Connections are
// kept for reuse, one or more per client, and never capped per host, so that
// after warm-up a request costs no dial. Timeouts are the transport's own
// rather than a context per request: the dial (with its TLS handshake) and
// the wait for the response's header are bounded by --timeout without
// allocating a timer and a context for each request. tc, when not nil,
// makes the https connections.
func newTransport(clients int, timeout time.Duration, tc *tlsfiles.Client) *http.Transport {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
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
	if tc != nil {
		// A dial function, not a TLSClientConfig: checking a server
		// against --cacert needs the host dialed, which crypto/tls does
		// not pass on when it is an IP address. The dialer's timeout
		// bounds the handshake too.
		tr.DialTLSContext = tc.DialTLSContext(d)
	}
	return tr
}
