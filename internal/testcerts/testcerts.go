// Package testcerts makes the certificates TLS tests need: a CA, its
// intermediates, and leaves for loopback servers and clients, written as
// PEM files for the code under test to read. Only tests import it: the
// keys live a day and nothing is checked.
package testcerts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority: self-signed from NewCA, or signed by its
// parent from Intermediate.
type CA struct {
	cert  *x509.Certificate
	key   *ecdsa.PrivateKey
	chain []byte // PEM of its certificate and those above it but the root
	file  string
}

// NewCA makes a self-signed CA with Subject CN name.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	return newCA(t, name, nil)
}

// Intermediate makes a CA signed by ca. The leaves it issues carry it in
// their certificate files, after the leaf, as a server sends its chain.
func (ca *CA) Intermediate(t testing.TB, name string) *CA {
	t.Helper()
	return newCA(t, name, ca)
}

func newCA(t testing.TB, name string, parent *CA) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	cert, certPEM := sign(t, tmpl, signer, &key.PublicKey, signerKey)
	ca := &CA{cert: cert, key: key}
	if parent != nil {
		ca.chain = append(append([]byte{}, certPEM...), parent.chain...)
	}
	ca.file = filepath.Join(t.TempDir(), "ca.pem")
	WriteFile(t, ca.file, certPEM)
	return ca
}

// CertFile is the path of a PEM file holding the CA's certificate alone.
func (ca *CA) CertFile() string { return ca.file }

// CertPEM is the CA's certificate in PEM.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
}

// Pool is a pool holding the CA's certificate alone, for tls.Configs that
// tests build by hand.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// LoopbackHosts are the SANs Issue gives a certificate.
func LoopbackHosts() []string { return []string{"127.0.0.1", "::1", "localhost"} }

// Issue makes a leaf certificate signed by the CA, valid for both server
// and client auth, with Subject CN cn and LoopbackHosts as SANs. It writes
// the certificate (with the CA's intermediates) and the key as PEM files
// in a new temporary directory and returns their paths.
func (ca *CA) Issue(t testing.TB, cn string) (certFile, keyFile string) {
	t.Helper()
	return ca.IssueFor(t, cn, LoopbackHosts()...)
}

// IssueFor is Issue with the SANs hosts, IP addresses and DNS names;
// with none, the certificate names no host.
func (ca *CA) IssueFor(t testing.TB, cn string, hosts ...string) (certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.issueTo(t, cn, hosts, certFile, keyFile)
	return certFile, keyFile
}

// IssueTo is Issue writing to the given paths, each replaced by rename as
// rotation tools do: the key first, then the certificate, so a reader in
// between sees a pair that does not match, as it would in production.
func (ca *CA) IssueTo(t testing.TB, cn, certFile, keyFile string) {
	t.Helper()
	ca.issueTo(t, cn, LoopbackHosts(), certFile, keyFile)
}

func (ca *CA) issueTo(t testing.TB, cn string, hosts []string, certFile, keyFile string) {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	_, certPEM := sign(t, tmpl, ca.cert, &key.PublicKey, ca.key)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	WriteFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	WriteFile(t, certFile, append(certPEM, ca.chain...))
}

// WriteFile replaces path with data through a temporary file renamed over
// it, so that a reader sees the old content or the new, never a mix.
func WriteFile(t testing.TB, path string, data []byte) {
	t.Helper()
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		t.Fatal(err)
	}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func sign(t testing.TB, tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, priv *ecdsa.PrivateKey) (*x509.Certificate, []byte) {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
