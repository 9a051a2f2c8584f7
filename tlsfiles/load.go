package tlsfiles

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"go.uber.org/zap"
)

// loadKeyPair reads a certificate (chain) and its key.
func loadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyPair, err)
	}
	if err := checkComplete(certPEM); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrKeyPair, certFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyPair, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: %s and %s: %w", ErrKeyPair, certFile, keyFile, err)
	}
	if cert.Leaf == nil { // GODEBUG=x509keypairleaf=0
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrKeyPair, certFile, err)
		}
	}
	return &cert, nil
}

// loadCAPool reads the certificates of a CA file into a pool.
func loadCAPool(caFile string) (*x509.CertPool, error) {
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTrustedCA, err)
	}
	if err := checkComplete(data); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrTrustedCA, caFile, err)
	}
	// Not AppendCertsFromPEM: it skips a block it cannot parse, and a CA
	// left out silently is a trust decision nobody made.
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: certificate %d: %w", ErrTrustedCA, caFile, n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: %s holds no CERTIFICATE block", ErrTrustedCA, caFile)
	}
	return pool, nil
}

// checkComplete fails for a PEM file whose last block is cut short, as a
// file read in the middle of being written is. pem.Decode would skip the
// broken block, leaving a chain without its last intermediate or a pool
// without its last CA.
func checkComplete(data []byte) error {
	rest := data
	for {
		b, r := pem.Decode(rest)
		if b == nil {
			break
		}
		rest = r
	}
	if bytes.Contains(rest, []byte("-----BEGIN")) {
		return errors.New("a PEM block is cut short (file half-written?)")
	}
	return nil
}

// newKeyPair is the reloader of a certificate and its key.
func newKeyPair(certFile, keyFile string, lg *zap.Logger, c clock) (*reloader[*tls.Certificate], error) {
	return newReloader(&reloader[*tls.Certificate]{
		what:  "certificate",
		paths: []string{certFile, keyFile},
		load:  func() (*tls.Certificate, error) { return loadKeyPair(certFile, keyFile) },
		describe: func(cert *tls.Certificate) []zap.Field {
			return []zap.Field{
				zap.String("subject_cn", cert.Leaf.Subject.CommonName),
				zap.Time("not_after", cert.Leaf.NotAfter),
			}
		},
		missing: ErrKeyPair,
		lg:      lg,
		clock:   c,
	})
}

// newCAPool is the reloader of a trusted CA file.
func newCAPool(caFile string, lg *zap.Logger, c clock) (*reloader[*x509.CertPool], error) {
	return newReloader(&reloader[*x509.CertPool]{
		what:     "trusted CAs",
		paths:    []string{caFile},
		load:     func() (*x509.CertPool, error) { return loadCAPool(caFile) },
		describe: func(*x509.CertPool) []zap.Field { return nil },
		missing:  ErrTrustedCA,
		lg:       lg,
		clock:    c,
	})
}
