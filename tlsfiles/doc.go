// Package tlsfiles builds TLS configurations from PEM files, in the manner
// of etcd's --cert-file/--key-file/--trusted-ca-file/--client-cert-auth
// flags and their --peer-* twins. It owns the reading of those files and
// the checks a handshake makes with what they hold: the certificate this
// side presents, the CAs the other side's certificate must chain to, and
// the client CN a server allows. It opens no connection of its own.
//
// Rotation needs no restart. A config never holds material itself: its
// callbacks (GetCertificate and GetConfigForClient on a server,
// GetClientCertificate and VerifyConnection on a client) ask a reloader,
// which on a handshake, at most once a second, looks at the files'
// modification time, size and identity, and reads them again when one
// changed. A file replaced by rename, as rotation tools do, is therefore
// always seen; one rewritten in place is seen when its size or time
// changes. A reload that fails, as it does when a file is caught
// half-written or a key is replaced before its certificate, keeps the
// previous material, logs a warning and is tried again at the next look.
//
// A client that checks servers against its own CA file does so in
// VerifyConnection, since a tls.Config's RootCAs cannot change under a
// running transport. crypto/tls tells that callback only the SNI name,
// which is never an IP address: a server dialed by IP address can be
// checked only by a config that was told the host (Client.Config) or by
// Client.DialTLSContext, which tells it the host of each address dialed.
package tlsfiles
