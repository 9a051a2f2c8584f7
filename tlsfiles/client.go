package tlsfiles

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"

	"go.uber.org/zap"
)

// Client is the dialing side's material: the certificate it presents when
// a server asks for one, and the CAs it checks servers against, each read
// again when its files change. It is safe for concurrent use.
type Client struct {
	pair *reloader[*tls.Certificate] // nil: no certificate to present
	ca   *reloader[*x509.CertPool]   // nil: the system roots
}

// NewClient reads f's certificate and key, when named (both or neither),
// and its TrustedCAFile, when named. ClientCertAuth and AllowedCN are
// ignored, so that one Files serves both ends of a peer link.
func NewClient(f Files, lg *zap.Logger) (*Client, error) {
	return newClient(f, lg, realClock())
}

func newClient(f Files, lg *zap.Logger, c clock) (*Client, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	has, err := f.hasPair()
	if err != nil {
		return nil, err
	}
	cl := &Client{}
	if has {
		if cl.pair, err = newKeyPair(f.CertFile, f.KeyFile, lg, c); err != nil {
			return nil, err
		}
	}
	if f.TrustedCAFile != "" {
		if cl.ca, err = newCAPool(f.TrustedCAFile, lg, c); err != nil {
			return nil, err
		}
	}
	return cl, nil
}

// ClientConfig returns a config for dialing that presents f's certificate
// when one is named (both files or neither) and checks servers against
// f's TrustedCAFile, or the system roots without one. It is
// NewClient(f, lg).Config(""), so with a TrustedCAFile the host checked is
// the name the handshake sends (SNI). crypto/tls sends none for an IP
// address, and such a server is refused (ErrNoServerName) rather than
// accepted unchecked: dial it with Client.DialTLSContext or a
// Client.Config told the host.
func ClientConfig(f Files, lg *zap.Logger) (*tls.Config, error) {
	c, err := NewClient(f, lg)
	if err != nil {
		return nil, err
	}
	return c.Config(""), nil
}

// Config returns a config for dialing host, a DNS name or an IP address,
// whose certificate must name it. An empty host leaves the name to the
// dialer: tls.Dial and http.Transport set ServerName from the address.
func (c *Client) Config(host string) *tls.Config {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The peer protocol's streams are endless HTTP/1.1 responses.
		NextProtos: []string{"http/1.1"},
		ServerName: host,
	}
	if c.pair != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return c.pair.get(), nil
		}
	}
	if c.ca != nil {
		// RootCAs is read by every copy of the config a transport makes
		// and cannot change under it: the CAs of the moment are applied
		// here instead, the normal check being skipped only to be redone.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = c.verifyServer(host)
	}
	return cfg
}

// DialTLSContext returns a function for http.Transport.DialTLSContext
// that dials with d (whose Timeout bounds the handshake too) and checks
// each server against the host of the address dialed, IP addresses
// included.
func (c *Client) DialTLSContext(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("tlsfiles: dialing %s: %w", addr, err)
		}
		td := &tls.Dialer{NetDialer: d, Config: c.Config(host)}
		return td.DialContext(ctx, network, addr)
	}
}

// verifyServer is the check a config with its own CAs makes in place of
// crypto/tls's: the chain against the current pool, for server auth, and
// the name dialed. host, when given, is that name; ConnectionState only
// has the SNI name, empty for an IP address, and x509 skips the name check
// when given none, hence the refusal.
func (c *Client) verifyServer(host string) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		name := host
		if name == "" {
			name = cs.ServerName
		}
		if name == "" {
			return ErrNoServerName
		}
		if len(cs.PeerCertificates) == 0 {
			return fmt.Errorf("tlsfiles: server %s sent no certificate", name)
		}
		opts := x509.VerifyOptions{
			Roots:         c.ca.get(),
			DNSName:       name, // an IP address is matched against IP SANs
			Intermediates: x509.NewCertPool(),
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		for _, cert := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(cert)
		}
		if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
			return fmt.Errorf("tlsfiles: server certificate for %s: %w", name, err)
		}
		return nil
	}
}
