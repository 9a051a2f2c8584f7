package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The answer to a write, written by hand, is the bytes encoding/json makes
// of writeBody.
func TestWrittenBodyIsJSONs(t *testing.T) {
	for _, c := range []struct{ index, rev uint64 }{
		{0, 0}, {1, 1}, {42, 41}, {1 << 32, 7}, {math.MaxUint64, math.MaxUint64},
	} {
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(writeBody{Index: c.index, Revision: c.rev}); err != nil {
			t.Fatal(err)
		}
		if got := appendWritten(nil, c.index, c.rev); !bytes.Equal(got, want.Bytes()) {
			t.Errorf("appendWritten(%d, %d) = %q, want %q", c.index, c.rev, got, want.Bytes())
		}
	}
}

// readBody takes a body of known length whole, refuses one shorter than
// it said, and reads one of unknown length up to the limit.
func TestReadBody(t *testing.T) {
	const limit = 8
	for _, c := range []struct {
		name       string
		body       string
		length     int64 // -1: unknown
		wantStatus int   // 0: read
	}{
		{"known length", "value", 5, 0},
		{"empty", "", 0, 0},
		{"shorter than it said", "abc", 5, http.StatusBadRequest},
		{"over the limit, said", "012345678", 9, http.StatusRequestEntityTooLarge},
		{"unknown length", "value", -1, 0},
		{"unknown length over the limit", "012345678", -1, http.StatusRequestEntityTooLarge},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := &handler{maxBody: limit}
			r := httptest.NewRequest(http.MethodPut, "/v1/kv/k", io.NopCloser(strings.NewReader(c.body)))
			r.ContentLength = c.length
			w := httptest.NewRecorder()
			body, ok := h.readBody(w, r)
			if c.wantStatus != 0 {
				if ok || w.Code != c.wantStatus {
					t.Fatalf("read %q (ok %v), answered %d; want refused with %d", body, ok, w.Code, c.wantStatus)
				}
				return
			}
			if !ok || string(body) != c.body {
				t.Fatalf("read %q (ok %v, answered %d %s), want %q", body, ok, w.Code, w.Body, c.body)
			}
		})
	}
}
