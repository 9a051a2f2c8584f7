package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/raftkv/node/messages"
)

// parsePreconditions turns a write's If-Match and If-None-Match headers into
// the compares of a transaction on key (nil: an unconditional write); an
// error wraps messages.ErrBadRequest. A
// key's entity tag is its mod_revision, quoted; only strong tags name a
// revision, and one tag per header is taken:
//
//	If-Match: *          the key exists          create_revision > 0
//	If-Match: "R"        it is at revision R     mod_revision = R
//	If-None-Match: *     it does not exist       create_revision = 0
//	If-None-Match: "R"   it is not at R          mod_revision != R
func parsePreconditions(h http.Header, key string) ([]messages.Compare, error) {
	var conds []messages.Compare
	for _, p := range []struct {
		name  string
		match bool
	}{{"If-Match", true}, {"If-None-Match", false}} {
		vals := h.Values(p.name)
		if len(vals) == 0 {
			continue
		}
		if len(vals) > 1 {
			return nil, fmt.Errorf("%w: %s: give one entity tag, not %d headers", messages.ErrBadRequest, p.name, len(vals))
		}
		v := strings.TrimSpace(vals[0])
		if v == "*" {
			op := messages.CompareGreater
			if !p.match {
				op = messages.CompareEqual
			}
			conds = append(conds, messages.Compare{Key: key, Target: messages.CompareCreateRevision, Op: op})
			continue
		}
		rev, err := parseETag(v)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", messages.ErrBadRequest, p.name, err)
		}
		op := messages.CompareEqual
		if !p.match {
			op = messages.CompareNotEqual
		}
		conds = append(conds, messages.Compare{Key: key, Target: messages.CompareModRevision, Op: op, Number: rev})
	}
	return conds, nil
}

// parseETag reads a strong entity tag that names a revision: "R", R ≥ 1.
func parseETag(v string) (uint64, error) {
	switch {
	case strings.HasPrefix(v, "W/"):
		return 0, errors.New("a weak tag cannot name a revision: give the ETag as it was served, \"R\"")
	case strings.Contains(v, ","):
		return 0, errors.New("give one entity tag, not a list")
	case len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"':
		return 0, fmt.Errorf("%s is not an entity tag: quote the revision, \"R\"", cutText(v))
	}
	// Tags compare as strings: "05" is not the tag of revision 5.
	rev, err := strconv.ParseUint(v[1:len(v)-1], 10, 64)
	if err != nil || rev == 0 || strconv.FormatUint(rev, 10) != v[1:len(v)-1] {
		return 0, fmt.Errorf("%s does not name a revision (a number from 1 up)", cutText(v))
	}
	return rev, nil
}
