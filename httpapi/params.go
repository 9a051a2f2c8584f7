package httpapi

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/raftkv/node/messages"
)

// maxParamEcho bounds how much of a parameter's name or value an error
// repeats: enough to recognise a typo, not a way to reflect any bytes.
const maxParamEcho = 64

// queryParams parses a query string and refuses any parameter the route
// does not take (unknownParam). Every error wraps messages.ErrBadRequest.
func queryParams(rawQuery, route string, known ...string) (url.Values, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, fmt.Errorf("%w: malformed query string: %w", messages.ErrBadRequest, err)
	}
	return q, unknownParam(q, route, known...)
}

// unknownParam refuses a parameter of q that the route does not take
// (known), naming it: a misspelt parameter ignored in silence would make a
// read weaker, or a delete wider, than the client asked. route names the
// route in the refusal ("a range read", "a PUT"). Every route under /v1,
// and raftexample's where the query is no part of the key, checks its
// parameters here.
func unknownParam(q url.Values, route string, known ...string) error {
	// Sorted, so that a request with several unknown parameters is always
	// refused naming the same one.
	for _, p := range slices.Sorted(maps.Keys(q)) {
		if slices.Contains(known, p) {
			continue
		}
		takes := "it takes none"
		if len(known) > 0 {
			takes = "it takes " + strings.Join(known, ", ")
		}
		return fmt.Errorf("%w: unknown parameter %s for %s; %s", messages.ErrBadRequest, echo(p), route, takes)
	}
	return nil
}

// echo quotes a parameter's name or value for an error, cut to
// maxParamEcho bytes.
func echo(s string) string {
	if len(s) <= maxParamEcho {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:maxParamEcho]) + fmt.Sprintf("… (%d bytes)", len(s))
}

// cutText is echo without the quotes, for text that is already quoted
// (an entity tag).
func cutText(s string) string {
	if len(s) <= maxParamEcho {
		return s
	}
	return s[:maxParamEcho] + fmt.Sprintf("… (%d bytes)", len(s))
}

// exactBool reads a parameter that is true or false as the docs spell it,
// false when absent.
func exactBool(q url.Values, name string) (bool, error) {
	if !q.Has(name) {
		return false, nil
	}
	switch v := q.Get(name); v {
	case "true":
		return true, nil
	case "false":
		return false, nil
	default:
		return false, fmt.Errorf("%w: %s must be true or false, not %s", messages.ErrBadRequest, name, echo(v))
	}
}

// parseConsistency reads the consistency parameter. Unknown values are
// refused rather than ignored: a typo must not silently weaken a read.
func parseConsistency(q url.Values) (serializable bool, err error) {
	switch c := q.Get("consistency"); c {
	case "", "linearizable":
		return false, nil
	case "serializable":
		return true, nil
	default:
		return false, fmt.Errorf("%w: consistency must be linearizable or serializable, not %s", messages.ErrBadRequest, echo(c))
	}
}

// parseRevision reads the revision parameter: 0 when absent. Revisions
// start at 1, so 0, a sign or anything not a number is refused.
func parseRevision(q url.Values) (uint64, error) {
	if !q.Has("revision") {
		return 0, nil
	}
	v := q.Get("revision")
	rev, err := strconv.ParseUint(v, 10, 64)
	if err != nil || rev == 0 {
		return 0, fmt.Errorf("%w: revision must be a revision from 1 up, not %s", messages.ErrBadRequest, echo(v))
	}
	return rev, nil
}

// checkBound refuses a range bound (the start or end of a range, a prefix)
// longer than a key may be, as a key is refused: the limit holds for every
// key a request names, so that the kv actor never meets a longer one. The
// error gives the length, never the bytes.
func checkBound(what, k string) error {
	if len(k) > messages.MaxKeyBytes {
		return fmt.Errorf("%w: %s: %d bytes, at most %d", messages.ErrKeyTooLarge, what, len(k), messages.MaxKeyBytes)
	}
	return nil
}
