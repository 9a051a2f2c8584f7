package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/raftkv/node/tlsfiles"
)

// deadlineConn gives every Read and Write on a connection its own deadline:
// a peer that stops answering is noticed within the timeout, while a long
// transfer that keeps moving (a large snapshot) is never cut off.
//
// A read waits longer while we write. net/http reads a client connection
// for the answer from the moment it is dialled, while the request body is
// still going out, and a peer answers only after the body's last byte: a
// plain per-read deadline would end every request that takes longer than
// the read timeout to write. So a read times out only once nothing was
// written for answer either.
type deadlineConn struct {
	net.Conn
	read, write time.Duration
	// answer is how long the peer may take to answer after our last write:
	// connReadTimeout for messages, snapshotAnswerTimeout for snapshots,
	// which the peer saves to disk before it answers.
	answer time.Duration
	// lastWrite is when a Write last started or ended, in Unix nanoseconds.
	lastWrite atomic.Int64
}

func (c *deadlineConn) Read(b []byte) (int, error) {
	for {
		deadline := time.Now().Add(c.read)
		if a := time.Unix(0, c.lastWrite.Load()).Add(c.answer); a.After(deadline) {
			deadline = a
		}
		if err := c.SetReadDeadline(deadline); err != nil {
			return 0, err
		}
		n, err := c.Conn.Read(b)
		// A timed-out read consumed nothing, so it may be retried.
		if n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) ||
			time.Since(time.Unix(0, c.lastWrite.Load())) >= c.answer {
			return n, err
		}
	}
}

func (c *deadlineConn) Write(b []byte) (int, error) {
	c.lastWrite.Store(time.Now().UnixNano())
	defer func() { c.lastWrite.Store(time.Now().UnixNano()) }()
	if err := c.SetWriteDeadline(time.Now().Add(c.write)); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// newPeerClient returns the HTTP client of one kind of peer traffic. Streams,
// the pipeline and snapshots use separate clients so that a long-lived
// stream or a long snapshot transfer never occupies a connection the
// pipeline waits for. https:// peers are dialed with tlsClient, each checked
// against the host it was dialed at (IP addresses included, which
// crypto/tls alone does not check when the CAs can change); every read and
// write, the handshake's too, has its deadline, and the peer has answer to
// answer once the request is written. HTTP/2 stays off (custom dialers
// disable it): a stream is an endless HTTP/1.1 response, as in rafthttp.
func newPeerClient(tlsClient *tlsfiles.Client, answer time.Duration) *http.Client {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &deadlineConn{Conn: c, read: connReadTimeout, write: connWriteTimeout, answer: answer}, nil
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
		ResponseHeaderTimeout: answer,
	}}
}
