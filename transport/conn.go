package transport

import (
	"context"
	"net"
	"net/http"
	"time"
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
// occupies a connection the pipeline waits for.
func newPeerClient() *http.Client {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &deadlineConn{Conn: c, read: connReadTimeout, write: connWriteTimeout}, nil
		},
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       connReadTimeout,
		ResponseHeaderTimeout: connReadTimeout,
	}}
}
