package httpapi

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/messages"
)

// dialect is what the client API does differently per state machine
// format: which key a request names, and which writes the format can take.
type dialect interface {
	// compatKey is the key of GET or PUT /<key>. params reports whether the
	// query string holds parameters (consistency) rather than part of the key.
	compatKey(r *http.Request) (key string, params bool)
	// kvKey is the key of /v1/kv/<key>; an error is the client's (400).
	kvKey(r *http.Request) (string, error)
	// watchKey is the key of /v1/watch/<key>, named as under /v1/kv/
	// (watch.go); "" with prefix=true watches every key.
	watchKey(r *http.Request) (string, error)
	// rangeKey is the key a range parameter (prefix=, end=) names, given
	// as it came in the query string (raw) and percent-decoded.
	rangeKey(raw, decoded string) string
	// checkPut and checkDelete refuse a write the format cannot take before
	// it reaches the kv actor (which would refuse it too); classify gives
	// the status.
	checkPut(key string, value []byte) error
	checkDelete() error
	// checkLeases refuses the lease routes, and a put naming a lease, in a
	// format whose entries cannot carry leases.
	checkLeases() error
	// kvMethods lists the methods /v1/kv/<key> serves, for Allow.
	kvMethods() string
}

// dialectOf returns the dialect of a format, or an error for a format
// this package does not implement.
func dialectOf(f apply.Format) (dialect, error) {
	switch f {
	case apply.FormatNative:
		return nativeDialect{}, nil
	case apply.FormatRaftexample:
		return raftexampleDialect{}, nil
	}
	return nil, fmt.Errorf("http api: %w: %v", apply.ErrUnknownFormat, f)
}

// nativeDialect names keys by the decoded path, so that /a%20b and /v1/kv/a%20b
// both name "a b".
type nativeDialect struct{}

func (nativeDialect) compatKey(r *http.Request) (string, bool) {
	return strings.TrimPrefix(r.URL.Path, "/"), true
}

func (nativeDialect) kvKey(r *http.Request) (string, error) {
	return strings.TrimPrefix(r.URL.Path, kvPrefix), nil
}

func (nativeDialect) rangeKey(_, decoded string) string { return decoded }

func (nativeDialect) checkPut(string, []byte) error { return nil }

func (nativeDialect) checkDelete() error { return nil }

func (nativeDialect) checkLeases() error { return nil }

func (nativeDialect) kvMethods() string { return "GET, PUT, DELETE" }

// raftexampleDialect names keys as raftexample does, so that a client sees the
// same keys whichever member of a mixed cluster it asks: raftexample's key is
// the raw request URI, leading slash, percent-escapes and query included.
type raftexampleDialect struct{}

// compatKey takes the whole request URI as raftexample does; the query is
// part of the key, so these reads cannot ask for serializable consistency.
func (raftexampleDialect) compatKey(r *http.Request) (string, bool) {
	return r.RequestURI, false
}

// kvKey maps /v1/kv/<rest> to the key of /<rest>: the path as sent, so that
// /v1/kv/a%20b and /a%20b name one key. The query stays parameters here.
func (raftexampleDialect) kvKey(r *http.Request) (string, error) {
	rest, ok := strings.CutPrefix(sentPath(r), kvPrefix)
	if !ok {
		// The route matched on the decoded path: the prefix itself was
		// percent-encoded, and no raftexample key corresponds. The path is
		// not repeated: the rest of it is a key.
		return "", fmt.Errorf("%w: the %s prefix must not be percent-encoded", messages.ErrBadRequest, kvPrefix)
	}
	if rest == "" {
		return "", nil // refused as an empty key, as in the native format
	}
	return "/" + rest, nil
}

// sentPath is the path of r as the client sent it, escapes as they came:
// raftexample's key is the request URI as sent, and the path of
// r.URL.EscapedPath() is Go's re-encoding of it whenever the client left a
// byte unescaped that Go would escape (a raw UTF-8 "é" comes back "%C3%A9",
// another key).
func sentPath(r *http.Request) string {
	if p, _, _ := strings.Cut(r.RequestURI, "?"); strings.HasPrefix(p, "/") {
		return p
	}
	// Absolute-form ("GET http://host/a"), or a request not read by a
	// server.
	return r.URL.EscapedPath()
}

// rangeKey puts the parameter in raftexample's key space, where every key
// is the request URI as sent, escapes included: prefix=a%20 lists the keys
// of /a%20..., as the path /v1/kv/a%20 names /a%20.
func (raftexampleDialect) rangeKey(raw, _ string) string { return "/" + raw }

func (raftexampleDialect) checkPut(key string, value []byte) error {
	return apply.CheckUTF8(key, value)
}

func (raftexampleDialect) checkDelete() error {
	return fmt.Errorf("%w: raftexample has no delete", messages.ErrUnsupported)
}

func (raftexampleDialect) checkLeases() error {
	return fmt.Errorf("%w: raftexample has no leases", messages.ErrUnsupported)
}

func (raftexampleDialect) kvMethods() string { return "GET, PUT" }
