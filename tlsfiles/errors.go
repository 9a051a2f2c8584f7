package tlsfiles

import "errors"

// ErrNoCertificate is returned by ServerConfig when neither a certificate
// nor a key file is named: a TLS server has nothing to present.
var ErrNoCertificate = errors.New("tlsfiles: no certificate and key files named")

// ErrIncompletePair is returned when one of the certificate and key files
// is named without the other: a certificate is useless without its key.
var ErrIncompletePair = errors.New("tlsfiles: certificate and key files must be named together")

// ErrNoTrustedCA is returned by ServerConfig for ClientCertAuth without a
// TrustedCAFile: there would be nothing to verify client certificates
// against.
var ErrNoTrustedCA = errors.New("tlsfiles: client certificate auth needs a trusted CA file")

// ErrNoClientCertAuth is returned by ServerConfig for an AllowedCN without
// ClientCertAuth: a client that sends no certificate would never meet the
// CN check.
var ErrNoClientCertAuth = errors.New("tlsfiles: an allowed CN needs client certificate auth")

// ErrKeyPair wraps the reason a certificate and key pair cannot be used:
// a file unreadable, not PEM, cut short, or a key that does not match the
// certificate.
var ErrKeyPair = errors.New("tlsfiles: bad certificate and key pair")

// ErrTrustedCA wraps the reason a trusted CA file cannot be used: the file
// unreadable, cut short, or holding no certificate.
var ErrTrustedCA = errors.New("tlsfiles: bad trusted CA file")

// ErrCNNotAllowed fails a server's handshake with a client whose
// certificate's Subject CN is not the AllowedCN.
var ErrCNNotAllowed = errors.New("tlsfiles: client certificate CN not allowed")

// ErrNoServerName fails a client's handshake when the config does not know
// the host it dialed, so a server certificate cannot be checked against
// it. crypto/tls leaves ConnectionState.ServerName empty for an IP
// address; use Client.Config or Client.DialTLSContext, which are told the
// host.
var ErrNoServerName = errors.New("tlsfiles: no server name to check the server's certificate against " +
	"(an IP address is not sent as SNI: dial with Client.DialTLSContext or a Client.Config told the host)")
