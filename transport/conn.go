package transport

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/raftkv/node/tlsfiles"
)

// deadlineConn gives every Read and Write on a connection its own deadline:
// a peer that stops answering is noticed within the timeout, while a long
// transfer that keeps moving (a large snapshot) is never cut off.
type deadlineConn struct {
	net.Conn
	read, write time.Duration
}

func (c *deadlineConn) Read(b []byte) (int, error) {
	if err := c.SetReadDeadline(time.Now().Add(c.read)); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *deadlineConn) Write(b []byte) (int, error) {
	if err := c.SetWriteDeadline(time.Now().Add(c.write)); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// newPeerClient returns the HTTP client of one kind of peer traffic. Streams
// and the pipeline use separate clients so that a long-lived stream never
// occupies a connection the pipeline waits for. https:// peers are dialed
// with tlsClient, each checked against the host it was dialed at (IP
// addresses included, which crypto/tls alone does not check when the CAs
// can change); every read and write, the handshake's too, has its deadline.
// HTTP/2 stays off (custom dialers disable it): a stream is an endless
// HTTP/1.1 response, as in rafthttp.
func newPeerClient(tlsClient *tlsfiles.Client) *http.Client {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &deadlineConn{Conn: c, read: connReadTimeout, write: connWriteTimeout}, nil
	}
	return &http.Client{Transport: &http.Transport{
		DialContext: dial,
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, fmt.Errorf("dial %s: %w", addr, err)
			}
			c, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			tc := tls.Client(c, tlsClient.Config(host))
			hctx, cancel := context.WithTimeout(ctx, dialTimeout)
			defer cancel()
			if err := tc.HandshakeContext(hctx); err != nil {
				_ = c.Close()
				return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
			}
			return tc, nil
		},
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       connReadTimeout,
		ResponseHeaderTimeout: connReadTimeout,
	}}
}
