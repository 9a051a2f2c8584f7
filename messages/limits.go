package messages

import (
	"errors"
	"fmt"
)

// MaxKeyBytes is the longest key a client may write. Keys are bbolt keys
// in the state machine's db, and bbolt refuses keys over 32,768 bytes; a
// quarter of that leaves room for whatever the store adds to a key (a
// prefix for leases or a layout to come) and keeps bbolt's 4 KiB branch
// pages from holding a single key each. etcd's registry keys are a few
// hundred bytes.
const MaxKeyBytes = 8 << 10

// Errors of a request refused before it is proposed, or of a committed
// entry refused when applied (decided alike on every member). Each is the
// client's to fix: nothing was written. The HTTP API answers each 400,
// but ErrValueTooLarge 413 (httpapi's classify, its one error table).
var (
	// ErrEmptyKey is returned for a write or read that names no key.
	ErrEmptyKey = errors.New("key is empty")
	// ErrKeyTooLarge is returned for a key over MaxKeyBytes.
	ErrKeyTooLarge = errors.New("key too large")
	// ErrValueTooLarge is returned for a value the state machine cannot
	// hold; the HTTP API refuses bodies over --max-request-bytes first.
	ErrValueTooLarge = errors.New("value too large")
	// ErrBadRequest is returned for a request whose parameters the route
	// does not take or cannot read; the message says which.
	ErrBadRequest = errors.New("bad request")
	// ErrEntryRefused is the answer to a write whose committed entry the
	// state machine refused when applying it, for what it holds (a command
	// it cannot decode, or one past a limit): every member refused it alike
	// and nothing was written.
	ErrEntryRefused = errors.New("entry refused when applied")
)

// CheckKey refuses a key no write may carry: empty, or over MaxKeyBytes.
// The error gives the key's length, never the key. The HTTP API checks
// every key a request names with it (and every range bound against
// MaxKeyBytes), on every route, before anything reaches the kv actor.
func CheckKey(key string) error {
	switch {
	case key == "":
		return ErrEmptyKey
	case len(key) > MaxKeyBytes:
		return fmt.Errorf("%w: %d bytes, at most %d", ErrKeyTooLarge, len(key), MaxKeyBytes)
	}
	return nil
}
