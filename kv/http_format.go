package kv

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/raftkv/node/messages"
)

// apiDialect is what the client API does differently per state machine
// format: which key a request names, and which writes the format can take.
type apiDialect interface {
	// compatKey is the key of GET or PUT /<key>. params reports whether the
	// query string holds parameters (consistency) rather than part of the key.
	compatKey(r *http.Request) (key string, params bool)
	// kvKey is the key of /v1/kv/<key>; an error is the client's (400).
	kvKey(r *http.Request) (string, error)
	// checkPut and checkDelete refuse a write the format cannot take before
	// it reaches the kv actor (which would refuse it too); apiClassify gives
	// the status.
	checkPut(key string, value []byte) error
	checkDelete() error
	// kvMethods lists the methods /v1/kv/<key> serves, for Allow.
	kvMethods() string
}

// apiDialectOf returns the dialect of a format, or an error for a format
// this package does not implement.
func apiDialectOf(f Format) (apiDialect, error) {
	switch f {
	case FormatNative:
		return apiNative{}, nil
	case FormatRaftexample:
		return apiRaftexample{}, nil
	}
	return nil, fmt.Errorf("http api: %w: %v", ErrUnknownFormat, f)
}

// apiNative names keys by the decoded path, so that /a%20b and /v1/kv/a%20b
// both name "a b".
type apiNative struct{}

func (apiNative) compatKey(r *http.Request) (string, bool) {
	return strings.TrimPrefix(r.URL.Path, "/"), true
}

func (apiNative) kvKey(r *http.Request) (string, error) {
	return strings.TrimPrefix(r.URL.Path, apiKVPrefix), nil
}

func (apiNative) checkPut(string, []byte) error { return nil }

func (apiNative) checkDelete() error { return nil }

func (apiNative) kvMethods() string { return "GET, PUT, DELETE" }

// apiRaftexample names keys as raftexample does, so that a client sees the
// same keys whichever member of a mixed cluster it asks: raftexample's key is
// the raw request URI, leading slash, percent-escapes and query included.
type apiRaftexample struct{}

// compatKey takes the whole request URI as raftexample does; the query is
// part of the key, so these reads cannot ask for serializable consistency.
func (apiRaftexample) compatKey(r *http.Request) (string, bool) {
	return r.RequestURI, false
}

// kvKey maps /v1/kv/<rest> to the key of /<rest>: the escaped path, so that
// /v1/kv/a%20b and /a%20b name one key. The query stays parameters here.
func (apiRaftexample) kvKey(r *http.Request) (string, error) {
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), apiKVPrefix)
	if !ok {
		// The route matched on the decoded path: the prefix itself was
		// percent-encoded, and no raftexample key corresponds.
		return "", fmt.Errorf("path %q: the %s prefix must not be percent-encoded", r.URL.EscapedPath(), apiKVPrefix)
	}
	if rest == "" {
		return "", nil // refused as an empty key, as in the native format
	}
	return "/" + rest, nil
}

func (apiRaftexample) checkPut(key string, value []byte) error { return checkUTF8(key, value) }

func (apiRaftexample) checkDelete() error {
	return fmt.Errorf("%w: raftexample has no delete", messages.ErrUnsupported)
}

func (apiRaftexample) kvMethods() string { return "GET, PUT" }
