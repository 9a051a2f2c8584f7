package tlsfiles_test

import (
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/node/internal/testcerts"
	"github.com/raftkv/node/internal/testutil"
	"github.com/raftkv/node/tlsfiles"
	"go.uber.org/zap"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// fakeClock is a clock that moves only when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// serverConfig is ServerConfig looking at the files on every handshake.
func serverConfig(t *testing.T, f tlsfiles.Files, lg *zap.Logger) *tls.Config {
	t.Helper()
	cfg, err := tlsfiles.ServerConfigClock(f, lg, 0, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// newClient is NewClient looking at the files on every handshake.
func newClient(t *testing.T, f tlsfiles.Files, lg *zap.Logger) *tlsfiles.Client {
	t.Helper()
	c, err := tlsfiles.NewClientClock(f, lg, 0, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// serverFiles is a server's certificate from ca, with no client checks.
func serverFiles(t *testing.T, ca *testcerts.CA) tlsfiles.Files {
	t.Helper()
	cert, key := ca.Issue(t, "server")
	return tlsfiles.Files{CertFile: cert, KeyFile: key}
}

// outcome is what each end of one connection saw.
type outcome struct {
	serverErr, clientErr error
	serverCN             string // of the certificate the server presented
	clientCN             string // of the certificate the server was sent; "" for none
	proto                string // negotiated by ALPN
	resumed              bool
}

// ok reports whether both ends completed the handshake and exchanged data.
func (o outcome) ok() bool { return o.serverErr == nil && o.clientErr == nil }

// connect makes one TLS connection over loopback TCP, the client dialing
// 127.0.0.1; the server writes a byte that the client reads, so that a
// refusal the server makes after the client's TLS 1.3 handshake is done
// reaches the client too.
func connect(t *testing.T, srvCfg, cliCfg *tls.Config) outcome {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	deadline := time.Now().Add(10 * time.Second)
	type served struct {
		err      error
		clientCN string
	}
	done := make(chan served, 1)
	go func() {
		var s served
		defer func() { done <- s }()
		c, err := ln.Accept()
		if err != nil {
			s.err = err
			return
		}
		_ = c.SetDeadline(deadline)
		tc := tls.Server(c, srvCfg)
		defer tc.Close()
		if s.err = tc.Handshake(); s.err != nil {
			return
		}
		if pc := tc.ConnectionState().PeerCertificates; len(pc) > 0 {
			s.clientCN = pc[0].Subject.CommonName
		}
		_, s.err = tc.Write([]byte{'k'})
	}()

	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = raw.SetDeadline(deadline)
	tc := tls.Client(raw, cliCfg)
	var o outcome
	if o.clientErr = tc.Handshake(); o.clientErr == nil {
		cs := tc.ConnectionState()
		o.serverCN = cs.PeerCertificates[0].Subject.CommonName
		o.proto = cs.NegotiatedProtocol
		o.resumed = cs.DidResume
		_, o.clientErr = io.ReadFull(tc, make([]byte, 1))
	}
	_ = tc.Close()
	s := <-done
	o.serverErr, o.clientCN = s.err, s.clientCN
	return o
}

// peek is a client that trusts any server, to look at what it presents.
func peek() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
}

// newHTTPS serves srvCfg's TLS with a handler that answers "ok".
func newHTTPS(t *testing.T, srvCfg *tls.Config) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok "+r.Proto)
	}))
	srv.TLS = srvCfg
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// get sends one GET with rt and returns the status and body.
func get(t *testing.T, rt http.RoundTripper, url string) (int, string, error) {
	t.Helper()
	hc := &http.Client{Transport: rt, Timeout: 10 * time.Second}
	resp, err := hc.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// transport is an http.Transport whose connections are closed at the end
// of the test.
func transport(t *testing.T, tr *http.Transport) *http.Transport {
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}
