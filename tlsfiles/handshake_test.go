package tlsfiles_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/node/internal/testcerts"
	"github.com/raftkv/node/tlsfiles"
	"go.uber.org/zap"
)

// TestServeHTTPS: a server and a client whose files come from one CA
// handshake and serve HTTP/1.1, whether the client dials an IP address
// (DialTLSContext) or a DNS name (the config of ClientConfig, as
// http.Transport's TLSClientConfig).
func TestServeHTTPS(t *testing.T) {
	ca := testcerts.NewCA(t, "ca")
	srv := newHTTPS(t, serverConfig(t, serverFiles(t, ca), nil))
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cl := newClient(t, tlsfiles.Files{TrustedCAFile: ca.CertFile()}, nil)
	byName, err := tlsfiles.ClientConfig(tlsfiles.Files{TrustedCAFile: ca.CertFile()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := &net.Dialer{Timeout: 5 * time.Second}

	tests := []struct {
		name string
		tr   *http.Transport
		url  string
	}{
		{"IP address, DialTLSContext", &http.Transport{DialTLSContext: cl.DialTLSContext(d)}, srv.URL},
		{"DNS name, ClientConfig", &http.Transport{TLSClientConfig: byName}, "https://localhost:" + port},
		// HTTP/2 is offered by the client and declined: the server's
		// config keeps to HTTP/1.1 though httptest's copy offers h2.
		{"HTTP/2 declined", &http.Transport{DialTLSContext: cl.DialTLSContext(d), ForceAttemptHTTP2: true}, srv.URL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, err := get(t, transport(t, tt.tr), tt.url)
			if err != nil {
				t.Fatal(err)
			}
			if status != http.StatusOK || body != "ok HTTP/1.1" {
				t.Errorf("got %d %q, want 200 \"ok HTTP/1.1\"", status, body)
			}
		})
	}
}

// TestPlaintextRefused: an HTTP request in the clear to the TLS listener
// is not served.
func TestPlaintextRefused(t *testing.T) {
	ca := testcerts.NewCA(t, "ca")
	srv := newHTTPS(t, serverConfig(t, serverFiles(t, ca), nil))
	plain := strings.Replace(srv.URL, "https://", "http://", 1)
	status, _, err := get(t, transport(t, &http.Transport{}), plain)
	if err == nil && status/100 == 2 {
		t.Fatalf("plaintext request answered %d", status)
	}
}

// TestClientCertAuth: what a server asks of client certificates, with and
// without ClientCertAuth and AllowedCN.
func TestClientCertAuth(t *testing.T) {
	ca := testcerts.NewCA(t, "ca")
	other := testcerts.NewCA(t, "other")
	inter := ca.Intermediate(t, "intermediate")
	base := serverFiles(t, ca)
	server := func(clientCertAuth bool, allowedCN string) *tls.Config {
		f := base
		f.TrustedCAFile, f.ClientCertAuth, f.AllowedCN = ca.CertFile(), clientCertAuth, allowedCN
		return serverConfig(t, f, nil)
	}
	required, onlyPeer1, optional := server(true, ""), server(true, "peer-1"), server(false, "")
	client := func(issuer *testcerts.CA, cn string) *tls.Config {
		f := tlsfiles.Files{TrustedCAFile: ca.CertFile()}
		if issuer != nil {
			f.CertFile, f.KeyFile = issuer.Issue(t, cn)
		}
		return newClient(t, f, nil).Config("127.0.0.1")
	}

	tests := []struct {
		name    string
		server  *tls.Config
		client  *tls.Config
		ok      bool
		wantErr error  // of the server, when refused
		msg     string // in the server's error
	}{
		{"required, none sent", required, client(nil, ""), false, nil, "certificate"},
		{"required, other CA", required, client(other, "peer-1"), false, nil, "unknown authority"},
		{"required, same CA", required, client(ca, "anyone"), true, nil, ""},
		{"required, through an intermediate", required, client(inter, "anyone"), true, nil, ""},
		{"allowed CN, other CN", onlyPeer1, client(ca, "peer-2"), false, tlsfiles.ErrCNNotAllowed, `CN "peer-2", want "peer-1"`},
		{"allowed CN, other CA", onlyPeer1, client(other, "peer-1"), false, nil, "unknown authority"},
		{"allowed CN, right CN", onlyPeer1, client(ca, "peer-1"), true, nil, ""},
		{"optional, none sent", optional, client(nil, ""), true, nil, ""},
		{"optional, other CA", optional, client(other, "peer-1"), false, nil, "unknown authority"},
		{"optional, same CA", optional, client(ca, "peer-1"), true, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := connect(t, tt.server, tt.client)
			if o.ok() != tt.ok {
				t.Fatalf("server error %v, client error %v; want success %v", o.serverErr, o.clientErr, tt.ok)
			}
			if tt.ok {
				return
			}
			if o.clientErr == nil {
				t.Error("the client did not learn of the refusal")
			}
			if tt.wantErr != nil && !errors.Is(o.serverErr, tt.wantErr) {
				t.Errorf("server error %v, want %v", o.serverErr, tt.wantErr)
			}
			if !strings.Contains(o.serverErr.Error(), tt.msg) {
				t.Errorf("server error %q does not say %q", o.serverErr, tt.msg)
			}
		})
	}
}

// TestClientVerifiesServer: a client refuses a server whose certificate
// is not from its CAs or does not name the host dialed, IP or DNS name.
func TestClientVerifiesServer(t *testing.T) {
	ca := testcerts.NewCA(t, "ca")
	other := testcerts.NewCA(t, "other")
	inter := ca.Intermediate(t, "intermediate")
	server := func(issuer *testcerts.CA, hosts ...string) *tls.Config {
		cert, key := issuer.IssueFor(t, "server", hosts...)
		return serverConfig(t, tlsfiles.Files{CertFile: cert, KeyFile: key}, nil)
	}
	loopback, otherCA := server(ca, testcerts.LoopbackHosts()...), server(other, testcerts.LoopbackHosts()...)
	chained := server(inter, testcerts.LoopbackHosts()...)
	elsewhere := server(ca, "10.0.0.1", "db.example")
	cl := newClient(t, tlsfiles.Files{TrustedCAFile: ca.CertFile()}, nil)
	bySNI := func(name string) *tls.Config { // as tls.Dial and http.Transport use ClientConfig's
		cfg, err := tlsfiles.ClientConfig(tlsfiles.Files{TrustedCAFile: ca.CertFile()}, nil)
		if err != nil {
			t.Fatal(err)
		}
		cfg.ServerName = name
		return cfg
	}
	system, err := tlsfiles.ClientConfig(tlsfiles.Files{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	system.ServerName = "127.0.0.1"

	var hostErr x509.HostnameError
	var authErr x509.UnknownAuthorityError
	tests := []struct {
		name   string
		server *tls.Config
		client *tls.Config
		check  func(error) bool // of the client's error; nil: must succeed
	}{
		{"IPv4 SAN", loopback, cl.Config("127.0.0.1"), nil},
		{"IPv6 SAN", loopback, cl.Config("::1"), nil},
		{"DNS SAN", loopback, cl.Config("localhost"), nil},
		{"DNS SAN by SNI", loopback, bySNI("localhost"), nil},
		{"chain with intermediate", chained, cl.Config("127.0.0.1"), nil},
		{"other CA", otherCA, cl.Config("127.0.0.1"), func(err error) bool { return errors.As(err, &authErr) }},
		{"IP not in SANs", elsewhere, cl.Config("127.0.0.1"), func(err error) bool { return errors.As(err, &hostErr) }},
		{"name not in SANs", elsewhere, cl.Config("localhost"), func(err error) bool { return errors.As(err, &hostErr) }},
		{"name not in SANs, by SNI", elsewhere, bySNI("localhost"), func(err error) bool { return errors.As(err, &hostErr) }},
		// An IP address is not sent as SNI, so a config that was not
		// told the host has no name to check and must not skip the check.
		{"IP address without a host", loopback, bySNI(""), func(err error) bool { return errors.Is(err, tlsfiles.ErrNoServerName) }},
		{"IP address by SNI", elsewhere, bySNI("127.0.0.1"), func(err error) bool { return errors.Is(err, tlsfiles.ErrNoServerName) }},
		// Without a CA file, the system roots, which do not hold ours.
		{"system roots", loopback, system, func(err error) bool { return err != nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := connect(t, tt.server, tt.client)
			if tt.check == nil {
				if !o.ok() {
					t.Fatalf("server error %v, client error %v", o.serverErr, o.clientErr)
				}
				return
			}
			if o.ok() {
				t.Fatal("the client accepted the server")
			}
			if !tt.check(o.clientErr) {
				t.Errorf("client error %v (%T)", o.clientErr, errors.Unwrap(o.clientErr))
			}
		})
	}

	// Through http.Transport, the config of ClientConfig refuses an IP
	// address rather than skip the host check; DialTLSContext checks it.
	srv := newHTTPS(t, elsewhere)
	_, _, err = get(t, transport(t, &http.Transport{TLSClientConfig: bySNI("")}), srv.URL)
	if !errors.Is(err, tlsfiles.ErrNoServerName) {
		t.Errorf("TLSClientConfig to %s: error %v, want ErrNoServerName", srv.URL, err)
	}
	tr := transport(t, &http.Transport{DialTLSContext: cl.DialTLSContext(&net.Dialer{Timeout: 5 * time.Second})})
	_, _, err = get(t, tr, srv.URL)
	var uerr *url.Error
	if !errors.As(err, &hostErr) || !errors.As(err, &uerr) {
		t.Errorf("DialTLSContext to %s: error %v, want a host name error", srv.URL, err)
	}
}

// TestOldTLSRefused: TLS 1.1 is refused, TLS 1.2 accepted.
func TestOldTLSRefused(t *testing.T) {
	ca := testcerts.NewCA(t, "ca")
	srvCfg := serverConfig(t, serverFiles(t, ca), zap.NewNop())
	tests := []struct {
		name    string
		version uint16
		ok      bool
	}{
		{"TLS 1.1", tls.VersionTLS11, false},
		{"TLS 1.2", tls.VersionTLS12, true},
		{"TLS 1.3", tls.VersionTLS13, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cli := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", MinVersion: tt.version, MaxVersion: tt.version}
			o := connect(t, srvCfg, cli)
			if o.ok() != tt.ok {
				t.Fatalf("server error %v, client error %v; want success %v", o.serverErr, o.clientErr, tt.ok)
			}
			if !tt.ok && !strings.Contains(o.serverErr.Error(), "version") {
				t.Errorf("server error %q does not blame the version", o.serverErr)
			}
		})
	}
}

// TestALPN: both ends offer and settle on HTTP/1.1 only.
func TestALPN(t *testing.T) {
	ca := testcerts.NewCA(t, "ca")
	srvCfg := serverConfig(t, serverFiles(t, ca), nil)
	cli := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", NextProtos: []string{"h2", "http/1.1"}}
	if o := connect(t, srvCfg, cli); !o.ok() || o.proto != "http/1.1" {
		t.Errorf("negotiated %q (errors %v, %v), want http/1.1", o.proto, o.serverErr, o.clientErr)
	}
	o := connect(t, srvCfg, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", NextProtos: []string{"h2"}})
	if o.ok() {
		t.Error("a client offering only h2 was served")
	}
}
