package tlsfiles_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/node/internal/testcerts"
	"github.com/raftkv/node/tlsfiles"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// observed is a logger whose warnings a test can count.
func observed() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.InfoLevel)
	return zap.New(core), logs
}

// warnings counts the warnings logged so far whose message has substr.
func warnings(logs *observer.ObservedLogs, substr string) int {
	n := 0
	for _, e := range logs.FilterLevelExact(zapcore.WarnLevel).All() {
		if strings.Contains(e.Message, substr) {
			n++
		}
	}
	return n
}

// halfWrite overwrites path in place with the first half of data, as a
// rotation that writes the file itself is seen halfway through.
func halfWrite(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data[:len(data)/2], 0o600); err != nil {
		t.Fatal(err)
	}
}

// bundle writes the certificates of cas into one CA file.
func bundle(t *testing.T, path string, cas ...*testcerts.CA) string {
	t.Helper()
	var data []byte
	for _, ca := range cas {
		data = append(data, ca.CertPEM()...)
	}
	testcerts.WriteFile(t, path, data)
	return path
}

// TestServerCertificateRotation: replacing the server's files changes the
// certificate new handshakes get from the same config; a half-written file
// or a key that does not match keeps the previous one, with a warning.
func TestServerCertificateRotation(t *testing.T) {
	ca1, ca2 := testcerts.NewCA(t, "ca-1"), testcerts.NewCA(t, "ca-2")
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	ca1.IssueTo(t, "one", cert, key)
	lg, logs := observed()
	srvCfg := serverConfig(t, tlsfiles.Files{CertFile: cert, KeyFile: key}, lg)
	// The client trusts both CAs, by its own files, so that it accepts
	// each certificate the server presents; it reads them every time too.
	cl := newClient(t, tlsfiles.Files{TrustedCAFile: bundle(t, filepath.Join(dir, "ca.pem"), ca1, ca2)}, nil)
	presented := func() string {
		t.Helper()
		o := connect(t, srvCfg, cl.Config("127.0.0.1"))
		if !o.ok() {
			t.Fatalf("server error %v, client error %v", o.serverErr, o.clientErr)
		}
		return o.serverCN
	}

	if cn := presented(); cn != "one" {
		t.Fatalf("presented %q, want one", cn)
	}
	ca2.IssueTo(t, "two", cert, key) // another CA and another CN
	if cn := presented(); cn != "two" {
		t.Fatalf("after rotation presented %q, want two", cn)
	}

	halfWrite(t, cert)
	if cn := presented(); cn != "two" {
		t.Fatalf("with a half-written certificate presented %q, want the previous two", cn)
	}
	if cn := presented(); cn != "two" { // tried again, failing again
		t.Fatalf("presented %q, want two", cn)
	}
	if n := warnings(logs, "keeping the previous certificate"); n != 2 {
		t.Errorf("%d warnings for two failed reloads, want 2", n)
	}

	// A key replaced before its certificate: the pair does not match.
	other := filepath.Join(t.TempDir(), "other.pem")
	ca1.IssueTo(t, "three", other, key)
	if cn := presented(); cn != "two" {
		t.Fatalf("with a mismatched key presented %q, want the previous two", cn)
	}
	ca1.IssueTo(t, "three", cert, key)
	if cn := presented(); cn != "three" {
		t.Fatalf("after the rotation completed presented %q, want three", cn)
	}
	if n := warnings(logs, ""); n != 3 {
		t.Errorf("%d warnings, want 3", n)
	}
}

// TestServerCARotation: the CAs a server verifies clients against follow
// its CA file; a half-written one keeps the previous CAs.
func TestServerCARotation(t *testing.T) {
	ca1, ca2 := testcerts.NewCA(t, "ca-1"), testcerts.NewCA(t, "ca-2")
	caFile := bundle(t, filepath.Join(t.TempDir(), "clients-ca.pem"), ca1)
	f := serverFiles(t, ca1)
	f.TrustedCAFile, f.ClientCertAuth = caFile, true
	srvCfg := serverConfig(t, f, nil)
	clientOf := func(ca *testcerts.CA) *tls.Config {
		cert, key := ca.Issue(t, "client of "+ca.CertFile())
		return newClient(t, tlsfiles.Files{CertFile: cert, KeyFile: key}, nil).Config("")
	}
	// The clients do not check the server: only the server's checks are
	// under test.
	c1, c2 := clientOf(ca1), clientOf(ca2)
	c1.InsecureSkipVerify, c2.InsecureSkipVerify = true, true
	accepted := func(cli *tls.Config) bool { return connect(t, srvCfg, cli).ok() }

	if !accepted(c1) || accepted(c2) {
		t.Fatal("before rotation: want the client of ca-1 alone accepted")
	}
	bundle(t, caFile, ca2)
	if accepted(c1) || !accepted(c2) {
		t.Fatal("after rotation: want the client of ca-2 alone accepted")
	}
	halfWrite(t, caFile)
	if accepted(c1) || !accepted(c2) {
		t.Fatal("with a half-written CA file: want the previous CAs kept")
	}
	bundle(t, caFile, ca1, ca2)
	if !accepted(c1) || !accepted(c2) {
		t.Fatal("with both CAs: want both clients accepted")
	}
}

// TestResumedSessionAfterCARotation: a client whose CA was taken out of
// the server's file cannot come back on a session ticket.
func TestResumedSessionAfterCARotation(t *testing.T) {
	ca1, ca2 := testcerts.NewCA(t, "ca-1"), testcerts.NewCA(t, "ca-2")
	caFile := bundle(t, filepath.Join(t.TempDir(), "clients-ca.pem"), ca1)
	f := serverFiles(t, ca1)
	f.TrustedCAFile, f.ClientCertAuth = caFile, true
	srvCfg := serverConfig(t, f, nil)
	cert, key := ca1.Issue(t, "client")
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	cli := &tls.Config{
		RootCAs:            ca1.Pool(),
		ServerName:         "localhost", // the session cache's key
		Certificates:       []tls.Certificate{pair},
		ClientSessionCache: tls.NewLRUClientSessionCache(4),
	}

	if o := connect(t, srvCfg, cli); !o.ok() || o.resumed {
		t.Fatalf("first connection: ok %v, resumed %v", o.ok(), o.resumed)
	}
	if o := connect(t, srvCfg, cli); !o.ok() || !o.resumed {
		t.Fatalf("second connection: ok %v (%v, %v), resumed %v; want a resumed session",
			o.ok(), o.serverErr, o.clientErr, o.resumed)
	}
	bundle(t, caFile, ca2)
	if o := connect(t, srvCfg, cli); o.ok() {
		t.Fatalf("after the client's CA was removed: accepted, resumed %v", o.resumed)
	}
}

// TestClientCARotation: the CAs a client verifies servers against follow
// its CA file; a half-written one keeps the previous CAs.
func TestClientCARotation(t *testing.T) {
	ca1, ca2 := testcerts.NewCA(t, "ca-1"), testcerts.NewCA(t, "ca-2")
	srv1, srv2 := serverConfig(t, serverFiles(t, ca1), nil), serverConfig(t, serverFiles(t, ca2), nil)
	caFile := bundle(t, filepath.Join(t.TempDir(), "servers-ca.pem"), ca1)
	lg, logs := observed()
	cli := newClient(t, tlsfiles.Files{TrustedCAFile: caFile}, lg).Config("127.0.0.1")
	accepts := func(srv *tls.Config) bool { return connect(t, srv, cli).ok() }

	if !accepts(srv1) || accepts(srv2) {
		t.Fatal("before rotation: want the server of ca-1 alone accepted")
	}
	bundle(t, caFile, ca2)
	if accepts(srv1) || !accepts(srv2) {
		t.Fatal("after rotation: want the server of ca-2 alone accepted")
	}
	halfWrite(t, caFile)
	if accepts(srv1) || !accepts(srv2) {
		t.Fatal("with a half-written CA file: want the previous CAs kept")
	}
	if warnings(logs, "keeping the previous trusted CAs") == 0 {
		t.Error("no warning for the half-written CA file")
	}
}

// TestClientCertificateRotation: the certificate a client presents
// follows its files.
func TestClientCertificateRotation(t *testing.T) {
	ca := testcerts.NewCA(t, "ca")
	f := serverFiles(t, ca)
	f.TrustedCAFile, f.ClientCertAuth = ca.CertFile(), true
	srvCfg := serverConfig(t, f, nil)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	ca.IssueTo(t, "one", cert, key)
	cli := newClient(t, tlsfiles.Files{CertFile: cert, KeyFile: key, TrustedCAFile: ca.CertFile()}, nil).Config("localhost")

	for _, cn := range []string{"one", "two"} {
		ca.IssueTo(t, cn, cert, key)
		o := connect(t, srvCfg, cli)
		if !o.ok() || o.clientCN != cn {
			t.Fatalf("server saw client %q (errors %v, %v), want %q", o.clientCN, o.serverErr, o.clientErr, cn)
		}
	}
}

// TestCheckInterval: the files are looked at again only once the interval
// since the last look is over, on the clock of the config.
func TestCheckInterval(t *testing.T) {
	if tlsfiles.CheckInterval <= 0 || tlsfiles.CheckInterval > time.Second {
		t.Fatalf("check interval %v, want within (0, 1s]", tlsfiles.CheckInterval)
	}
	ca := testcerts.NewCA(t, "ca")
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	ca.IssueTo(t, "one", cert, key)
	clk := newFakeClock()
	srvCfg, err := tlsfiles.ServerConfigClock(tlsfiles.Files{CertFile: cert, KeyFile: key}, nil, tlsfiles.CheckInterval, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	presented := func() string {
		t.Helper()
		o := connect(t, srvCfg, peek())
		if !o.ok() {
			t.Fatalf("server error %v, client error %v", o.serverErr, o.clientErr)
		}
		return o.serverCN
	}

	ca.IssueTo(t, "two", cert, key)
	if cn := presented(); cn != "one" {
		t.Fatalf("within the interval of the first read: presented %q, want one", cn)
	}
	clk.Advance(tlsfiles.CheckInterval - time.Nanosecond)
	if cn := presented(); cn != "one" {
		t.Fatalf("just before the interval is over: presented %q, want one", cn)
	}
	clk.Advance(time.Nanosecond)
	if cn := presented(); cn != "two" {
		t.Fatalf("once the interval is over: presented %q, want two", cn)
	}
	ca.IssueTo(t, "three", cert, key)
	if cn := presented(); cn != "two" {
		t.Fatalf("right after a look: presented %q, want two", cn)
	}
}

// TestConcurrentRotation: handshakes on many goroutines while the files of
// both ends are replaced all succeed, on the old material or the new (run
// with -race, it also checks the reloaders' locking).
func TestConcurrentRotation(t *testing.T) {
	ca1, ca2 := testcerts.NewCA(t, "ca-1"), testcerts.NewCA(t, "ca-2")
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	ca1.IssueTo(t, "server", cert, key)
	caFile := bundle(t, filepath.Join(dir, "ca.pem"), ca1, ca2)
	srv := newHTTPS(t, serverConfig(t, tlsfiles.Files{CertFile: cert, KeyFile: key}, zap.NewNop()))
	cl := newClient(t, tlsfiles.Files{TrustedCAFile: caFile}, zap.NewNop())
	tr := transport(t, &http.Transport{
		DialTLSContext:    cl.DialTLSContext(&net.Dialer{Timeout: 5 * time.Second}),
		DisableKeepAlives: true, // a handshake per request
	})

	const clients, requests = 8, 10
	errs := make(chan error, clients*requests)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for range requests {
				if status, _, err := get(t, tr, srv.URL); err != nil || status != http.StatusOK {
					errs <- fmt.Errorf("status %d, error %v", status, err)
				}
			}
		})
	}
	for i := range 10 {
		[]*testcerts.CA{ca1, ca2}[i%2].IssueTo(t, "server", cert, key)
		bundle(t, caFile, ca1, ca2)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
