package tlsfiles_test

import (
	"crypto/tls"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raftkv/node/internal/testcerts"
	"github.com/raftkv/node/tlsfiles"
	"go.uber.org/zap"
)

// badFiles are files that cannot serve as what their names say.
type badFiles struct {
	missing   string // a path nothing is at
	garbage   string // not PEM
	cutCert   string // a certificate cut in the middle, as if half-written
	cutCA     string // a CA followed by half of another
	keyOnly   string // a PEM file holding a key and no certificate
	otherKey  string // a key that does not match the certificates of cert
	cert, key string // a valid pair
	ca        string // a valid CA file
}

func newBadFiles(t *testing.T) badFiles {
	t.Helper()
	ca := testcerts.NewCA(t, "ca")
	cert, key := ca.Issue(t, "a")
	_, otherKey := ca.Issue(t, "b")
	certPEM, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		testcerts.WriteFile(t, p, data)
		return p
	}
	caPEM := ca.CertPEM()
	return badFiles{
		missing:  filepath.Join(dir, "absent.pem"),
		garbage:  write("garbage.pem", []byte("not a certificate\n")),
		cutCert:  write("cut-cert.pem", certPEM[:len(certPEM)/2]),
		cutCA:    write("cut-ca.pem", append(append([]byte{}, caPEM...), caPEM[:len(caPEM)/2]...)),
		keyOnly:  otherKey,
		otherKey: otherKey,
		cert:     cert,
		key:      key,
		ca:       ca.CertFile(),
	}
}

func TestServerConfigRefuses(t *testing.T) {
	b := newBadFiles(t)
	tests := []struct {
		name  string
		files tlsfiles.Files
		want  []error // all must match with errors.Is
		names string  // a path the message must name
	}{
		{"no files", tlsfiles.Files{}, []error{tlsfiles.ErrNoCertificate}, ""},
		{"only a CA", tlsfiles.Files{TrustedCAFile: b.ca}, []error{tlsfiles.ErrNoCertificate}, ""},
		{"cert without key", tlsfiles.Files{CertFile: b.cert}, []error{tlsfiles.ErrIncompletePair}, b.cert},
		{"key without cert", tlsfiles.Files{KeyFile: b.key}, []error{tlsfiles.ErrIncompletePair}, b.key},
		{"client cert auth without CA", tlsfiles.Files{CertFile: b.cert, KeyFile: b.key, ClientCertAuth: true},
			[]error{tlsfiles.ErrNoTrustedCA}, ""},
		{"allowed CN without client cert auth", tlsfiles.Files{CertFile: b.cert, KeyFile: b.key, TrustedCAFile: b.ca, AllowedCN: "x"},
			[]error{tlsfiles.ErrNoClientCertAuth}, ""},
		// Combinations are refused before any file is read.
		{"combination before files", tlsfiles.Files{CertFile: b.missing, KeyFile: b.missing, ClientCertAuth: true},
			[]error{tlsfiles.ErrNoTrustedCA}, ""},
		{"missing cert", tlsfiles.Files{CertFile: b.missing, KeyFile: b.key},
			[]error{tlsfiles.ErrKeyPair, fs.ErrNotExist}, b.missing},
		{"missing key", tlsfiles.Files{CertFile: b.cert, KeyFile: b.missing},
			[]error{tlsfiles.ErrKeyPair, fs.ErrNotExist}, b.missing},
		{"cert not PEM", tlsfiles.Files{CertFile: b.garbage, KeyFile: b.key}, []error{tlsfiles.ErrKeyPair}, b.garbage},
		{"cert cut short", tlsfiles.Files{CertFile: b.cutCert, KeyFile: b.key}, []error{tlsfiles.ErrKeyPair}, b.cutCert},
		{"not a pair", tlsfiles.Files{CertFile: b.cert, KeyFile: b.otherKey}, []error{tlsfiles.ErrKeyPair}, b.otherKey},
		{"missing CA", tlsfiles.Files{CertFile: b.cert, KeyFile: b.key, TrustedCAFile: b.missing},
			[]error{tlsfiles.ErrTrustedCA, fs.ErrNotExist}, b.missing},
		{"CA file without certificate", tlsfiles.Files{CertFile: b.cert, KeyFile: b.key, TrustedCAFile: b.keyOnly},
			[]error{tlsfiles.ErrTrustedCA}, b.keyOnly},
		{"CA file not PEM", tlsfiles.Files{CertFile: b.cert, KeyFile: b.key, TrustedCAFile: b.garbage},
			[]error{tlsfiles.ErrTrustedCA}, b.garbage},
		{"CA file cut short", tlsfiles.Files{CertFile: b.cert, KeyFile: b.key, TrustedCAFile: b.cutCA, ClientCertAuth: true},
			[]error{tlsfiles.ErrTrustedCA}, b.cutCA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := tlsfiles.ServerConfig(tt.files, nil)
			checkRefusal(t, cfg, err, tt.want, tt.names)
		})
	}
}

func TestClientConfigRefuses(t *testing.T) {
	b := newBadFiles(t)
	tests := []struct {
		name  string
		files tlsfiles.Files
		want  []error
		names string
	}{
		{"cert without key", tlsfiles.Files{CertFile: b.cert, TrustedCAFile: b.ca}, []error{tlsfiles.ErrIncompletePair}, b.cert},
		{"key without cert", tlsfiles.Files{KeyFile: b.key}, []error{tlsfiles.ErrIncompletePair}, b.key},
		{"missing cert", tlsfiles.Files{CertFile: b.missing, KeyFile: b.key},
			[]error{tlsfiles.ErrKeyPair, fs.ErrNotExist}, b.missing},
		{"not a pair", tlsfiles.Files{CertFile: b.cert, KeyFile: b.otherKey}, []error{tlsfiles.ErrKeyPair}, b.otherKey},
		{"missing CA", tlsfiles.Files{TrustedCAFile: b.missing}, []error{tlsfiles.ErrTrustedCA, fs.ErrNotExist}, b.missing},
		{"CA file without certificate", tlsfiles.Files{TrustedCAFile: b.keyOnly}, []error{tlsfiles.ErrTrustedCA}, b.keyOnly},
		{"CA file cut short", tlsfiles.Files{TrustedCAFile: b.cutCA}, []error{tlsfiles.ErrTrustedCA}, b.cutCA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := tlsfiles.ClientConfig(tt.files, zap.NewNop())
			checkRefusal(t, cfg, err, tt.want, tt.names)
		})
	}
}

func checkRefusal(t *testing.T, cfg *tls.Config, err error, want []error, names string) {
	t.Helper()
	if cfg != nil || err == nil {
		t.Fatalf("got a config and error %v, want a refusal", err)
	}
	for _, w := range want {
		if !errors.Is(err, w) {
			t.Errorf("error %q is not %q", err, w)
		}
	}
	if names != "" && !strings.Contains(err.Error(), names) {
		t.Errorf("error %q does not name %s", err, names)
	}
}

// TestConfigsAccept checks the combinations that are fine, and the
// settings every config has.
func TestConfigsAccept(t *testing.T) {
	b := newBadFiles(t)
	pair := tlsfiles.Files{CertFile: b.cert, KeyFile: b.key}
	withCA := pair
	withCA.TrustedCAFile = b.ca
	mtls := withCA
	mtls.ClientCertAuth, mtls.AllowedCN = true, "peer"

	servers := []struct {
		name string
		f    tlsfiles.Files
		auth tls.ClientAuthType
	}{
		{"certificate only", pair, tls.NoClientCert},
		{"CA without client cert auth", withCA, tls.VerifyClientCertIfGiven},
		{"client cert auth and CN", mtls, tls.RequireAndVerifyClientCert},
	}
	for _, tt := range servers {
		t.Run("server "+tt.name, func(t *testing.T) {
			cfg, err := tlsfiles.ServerConfig(tt.f, nil)
			if err != nil {
				t.Fatal(err)
			}
			checkCommon(t, cfg)
			if cfg.ClientAuth != tt.auth {
				t.Errorf("ClientAuth %v, want %v", cfg.ClientAuth, tt.auth)
			}
			if cfg.GetCertificate == nil || cfg.GetConfigForClient == nil {
				t.Error("the certificate and CAs must come from callbacks, to follow the files")
			}
		})
	}
	// The server-only fields are ignored, so that a peer's Files serve
	// both ends of its links.
	for _, f := range []tlsfiles.Files{{}, {TrustedCAFile: b.ca}, pair, mtls} {
		cfg, err := tlsfiles.ClientConfig(f, nil)
		if err != nil {
			t.Fatalf("ClientConfig(%+v): %v", f, err)
		}
		checkCommon(t, cfg)
		if (f.CertFile != "") != (cfg.GetClientCertificate != nil) {
			t.Errorf("ClientConfig(%+v): presents a certificate: %v", f, cfg.GetClientCertificate != nil)
		}
		if (f.TrustedCAFile != "") != (cfg.VerifyConnection != nil && cfg.InsecureSkipVerify) {
			t.Errorf("ClientConfig(%+v): verifies servers itself: %v", f, cfg.VerifyConnection != nil)
		}
	}
}

func checkCommon(t *testing.T, cfg *tls.Config) {
	t.Helper()
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion %#x, want TLS 1.2", cfg.MinVersion)
	}
	if len(cfg.NextProtos) != 1 || cfg.NextProtos[0] != "http/1.1" {
		t.Errorf("NextProtos %q, want [http/1.1]", cfg.NextProtos)
	}
}

func TestFilesEmpty(t *testing.T) {
	tests := []struct {
		f    tlsfiles.Files
		want bool
	}{
		{tlsfiles.Files{}, true},
		{tlsfiles.Files{ClientCertAuth: true, AllowedCN: "x"}, true},
		{tlsfiles.Files{CertFile: "c"}, false},
		{tlsfiles.Files{KeyFile: "k"}, false},
		{tlsfiles.Files{TrustedCAFile: "ca"}, false},
	}
	for _, tt := range tests {
		if got := tt.f.Empty(); got != tt.want {
			t.Errorf("%+v.Empty() = %v, want %v", tt.f, got, tt.want)
		}
	}
}
