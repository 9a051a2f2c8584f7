package tlsfiles

import "fmt"

// Files names the PEM files of one side of a TLS connection, as etcd's
// flags do: --cert-file, --key-file, --trusted-ca-file and
// --client-cert-auth, and for peers the --peer-* ones with
// --peer-cert-allowed-cn. The same Files can serve both ends of a peer
// link: ClientConfig ignores the server-only fields.
type Files struct {
	// CertFile and KeyFile are this side's certificate, optionally
	// followed by its intermediates, and its private key.
	CertFile, KeyFile string
	// TrustedCAFile holds the CAs that sign the other side's
	// certificates. Empty means the system roots for a client, and no
	// verification of clients for a server.
	TrustedCAFile string
	// ClientCertAuth (server only) requires a client certificate signed
	// by a CA of TrustedCAFile. Without it, a server with a TrustedCAFile
	// still verifies the certificates clients choose to send.
	ClientCertAuth bool
	// AllowedCN (server only), when not empty, is the one Subject CN a
	// client certificate may have.
	AllowedCN string
}

// Empty reports whether no file is named.
func (f Files) Empty() bool {
	return f.CertFile == "" && f.KeyFile == "" && f.TrustedCAFile == ""
}

// hasPair reports whether a certificate is named, and fails when only half
// of the pair is.
func (f Files) hasPair() (bool, error) {
	switch {
	case f.CertFile == "" && f.KeyFile == "":
		return false, nil
	case f.KeyFile == "":
		return false, fmt.Errorf("%w: certificate %s has no key file", ErrIncompletePair, f.CertFile)
	case f.CertFile == "":
		return false, fmt.Errorf("%w: key %s has no certificate file", ErrIncompletePair, f.KeyFile)
	}
	return true, nil
}

// checkServer refuses the combinations a server cannot run with, before
// any file is read.
func (f Files) checkServer() error {
	has, err := f.hasPair()
	if err != nil {
		return err
	}
	switch {
	case !has:
		return ErrNoCertificate
	case f.ClientCertAuth && f.TrustedCAFile == "":
		return ErrNoTrustedCA
	case f.AllowedCN != "" && !f.ClientCertAuth:
		return fmt.Errorf("%w: allowed CN %q", ErrNoClientCertAuth, f.AllowedCN)
	}
	return nil
}
