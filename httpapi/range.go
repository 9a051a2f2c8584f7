package httpapi

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/raftkv/node/kv/store"
	"github.com/raftkv/node/messages"
)

// rangeParams are the parameters GET /v1/kv/ takes for a range read; any
// other is refused (unknownParam), so that a misspelt one does not
// silently read more or less than asked.
var rangeParams = []string{"prefix", "end", "limit", "continue", "keys_only", "count_only", "revision", "consistency"}

// prefixEnd is the end of the range of the keys starting with p, as etcd
// computes it: p with its last byte below 0xff incremented and the rest cut;
// every key from p on when there is none (all 0xff, or p empty).
func prefixEnd(p string) string {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return "\x00"
}

// parseRange reads a range read's parameters; key is the path's. Every
// error is the client's: it wraps messages.ErrBadRequest, or
// ErrKeyTooLarge for a bound longer than a key may be.
func (h *handler) parseRange(key, rawQuery string, q url.Values) (messages.Range, error) {
	rr, err := h.parseRangeParams(key, rawQuery, q)
	if err != nil && !errors.Is(err, messages.ErrBadRequest) && !errors.Is(err, messages.ErrKeyTooLarge) {
		err = fmt.Errorf("%w: %w", messages.ErrBadRequest, err)
	}
	return rr, err
}

func (h *handler) parseRangeParams(key, rawQuery string, q url.Values) (messages.Range, error) {
	if err := unknownParam(q, "a range read", rangeParams...); err != nil {
		return messages.Range{}, err
	}
	var rr messages.Range
	var err error
	switch {
	case q.Has("prefix") && (key != "" || q.Has("end")):
		return rr, errors.New("prefix= names the keys by itself: give no key in the path and no end=")
	case q.Has("prefix"):
		rr.Start = h.dialect.rangeKey(rawParam(rawQuery, "prefix"), q.Get("prefix"))
		rr.End = prefixEnd(rr.Start)
		if err := checkBound("prefix", rr.Start); err != nil {
			return rr, err
		}
	case q.Has("end"):
		rr.Start, rr.End = key, "\x00"
		if e := q.Get("end"); e != "" {
			rr.End = h.dialect.rangeKey(rawParam(rawQuery, "end"), e)
		}
		if key == "" {
			return rr, errors.New("end= bounds a range that starts at the path's key: give one")
		}
		for _, b := range []struct{ what, k string }{{"the range's start", rr.Start}, {"end", rr.End}} {
			if err := checkBound(b.what, b.k); err != nil {
				return rr, err
			}
		}
	default:
		rr.Start, rr.End = "", "\x00" // every key
	}
	if rr.Serializable, err = parseConsistency(q); err != nil {
		return rr, err
	}
	if rr.Revision, err = parseRevision(q); err != nil {
		return rr, err
	}
	if q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n < 1 || n > store.MaxRangeLimit {
			return rr, fmt.Errorf("limit must be from 1 to %d, not %q", store.MaxRangeLimit, q.Get("limit"))
		}
		rr.Limit = n
	}
	for _, f := range []struct {
		name string
		v    *bool
	}{{"keys_only", &rr.KeysOnly}, {"count_only", &rr.CountOnly}} {
		if q.Has(f.name) {
			if *f.v, err = strconv.ParseBool(q.Get(f.name)); err != nil {
				return rr, fmt.Errorf("%s must be true or false, not %q", f.name, q.Get(f.name))
			}
		}
	}
	if q.Has("continue") {
		rev, start, err := decodeContinue(q.Get("continue"))
		if err != nil {
			return rr, err
		}
		if rr.Revision != 0 && rr.Revision != rev {
			return rr, fmt.Errorf("continue= reads at revision %d, revision= asks for %d", rev, rr.Revision)
		}
		if start < rr.Start || (rr.End != "\x00" && start >= rr.End) {
			return rr, errors.New("continue= does not belong to this range: give the range parameters of the first page")
		}
		rr.Start, rr.Revision = start, rev
	}
	return rr, nil
}

// rawParam is the first value of name in a query string as sent, not
// percent-decoded ("" if absent).
func rawParam(rawQuery, name string) string {
	for kv := range strings.SplitSeq(rawQuery, "&") {
		if k, v, _ := strings.Cut(kv, "="); k == name {
			return v
		}
	}
	return ""
}

// A continuation is the revision of the first page and the key the next
// page starts at, base64url: opaque to clients, and it pins every page to
// one revision.
func encodeContinue(rev uint64, next string) string {
	b := binary.AppendUvarint(nil, rev)
	return base64.RawURLEncoding.EncodeToString(append(b, next...))
}

func decodeContinue(s string) (uint64, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		rev, n := binary.Uvarint(b)
		if n > 0 && rev > 0 {
			return rev, string(b[n:]), nil
		}
	}
	return 0, "", errors.New("continue= is not a continuation this API gave")
}

// serveRange answers a range read:
//
//	{"revision":R,"kvs":[...],"count":N,"more":false[,"continue":"..."]}
//
// written by hand, since the keys' JSON (messages.KV.AppendJSON) is already
// bytes and a page holds up to 10,000 of them.
func (h *handler) serveRange(w http.ResponseWriter, r *http.Request, key string, q url.Values) {
	rr, err := h.parseRange(key, r.URL.RawQuery, q)
	if err != nil {
		h.fail(w, r, err, false)
		return
	}
	res, err := h.askKV(rr)
	if err != nil {
		h.fail(w, r, err, false)
		return
	}
	if len(res.Results) != 1 {
		h.fail(w, r, fmt.Errorf("kv actor answered a range with %d results", len(res.Results)), false)
		return
	}
	page := res.Results[0]
	b := []byte(`{"revision":`)
	b = strconv.AppendUint(b, res.Revision, 10)
	if !rr.CountOnly {
		b = append(b, `,"kvs":`...)
		b = appendKVs(b, page.KVs, !rr.KeysOnly)
		b = append(b, `,"more":`...)
		b = strconv.AppendBool(b, page.More)
		if page.More && len(page.KVs) > 0 {
			next := page.KVs[len(page.KVs)-1].Key + "\x00"
			b = append(b, `,"continue":"`...)
			b = append(b, encodeContinue(res.Revision, next)...)
			b = append(b, '"')
		}
	}
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, int64(page.Count), 10)
	b = append(b, "}\n"...)
	w.Header().Set(hdrRevision, strconv.FormatUint(res.Revision, 10))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func appendKVs(b []byte, kvs []messages.KV, withValues bool) []byte {
	b = append(b, '[')
	for i, kv := range kvs {
		if i > 0 {
			b = append(b, ',')
		}
		b = kv.AppendJSON(b, withValues)
	}
	return append(b, ']')
}
