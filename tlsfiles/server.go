package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"

	"go.uber.org/zap"
)

// ServerConfig returns a config for a listener that presents f's
// certificate and, with a TrustedCAFile, verifies client certificates:
// required with ClientCertAuth, checked when sent without it. It fails,
// having only read the files, when the certificate or key is missing,
// unreadable or not a pair, when ClientCertAuth lacks a TrustedCAFile or
// AllowedCN lacks ClientCertAuth, or when the CA file holds no certificate.
//
// Each handshake runs on a copy of the returned config taken then
// (GetConfigForClient) with the current certificate and CAs. Changes made
// to the returned config before it serves are honoured; copies made by a
// server library (httptest, http.Server.ServeTLS) cannot replace its
// certificate or protocols, so the peer protocol keeps HTTP/1.1.
func ServerConfig(f Files, lg *zap.Logger) (*tls.Config, error) {
	return serverConfig(f, lg, realClock())
}

func serverConfig(f Files, lg *zap.Logger, c clock) (*tls.Config, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	if err := f.checkServer(); err != nil {
		return nil, err
	}
	pair, err := newKeyPair(f.CertFile, f.KeyFile, lg, c)
	if err != nil {
		return nil, err
	}
	var ca *reloader[*x509.CertPool]
	if f.TrustedCAFile != "" {
		if ca, err = newCAPool(f.TrustedCAFile, lg, c); err != nil {
			return nil, err
		}
	}

	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The peer protocol's streams are endless HTTP/1.1 responses.
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return pair.get(), nil
		},
	}
	switch {
	case f.ClientCertAuth:
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	case ca != nil:
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	if f.AllowedCN != "" {
		cfg.VerifyConnection = checkCN(f.AllowedCN)
	}
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		hc := cfg.Clone()
		hc.GetConfigForClient = nil
		if ca != nil {
			// Also named in the certificate request, so the pool must be
			// the current one, not only the verification.
			hc.ClientCAs = ca.get()
		}
		return hc, nil
	}
	return cfg, nil
}

// checkCN returns the server's check of AllowedCN. It is a
// VerifyConnection, not a VerifyPeerCertificate, since only the former
// runs on resumed sessions too. (crypto/tls itself resumes only sessions
// whose client chain still ends in the handshake's ClientCAs, which
// GetConfigForClient keeps current.)
func checkCN(allowed string) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			// ClientCertAuth makes this impossible; fail closed anyway.
			return fmt.Errorf("%w: no client certificate, want CN %q", ErrCNNotAllowed, allowed)
		}
		if cn := cs.PeerCertificates[0].Subject.CommonName; cn != allowed {
			return fmt.Errorf("%w: client certificate has CN %q, want %q", ErrCNNotAllowed, cn, allowed)
		}
		return nil
	}
}
