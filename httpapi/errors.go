package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/raftkv/node/door"
	"github.com/raftkv/node/internal/redact"
	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/messages"
	"github.com/raftkv/node/watch"
)

// failure is how an error is shown to a client.
type failure struct {
	status     int
	reason     string
	retryAfter bool // the request was not proposed, a retry is safe
	// compacted, for a 410, is the newest revision the history no longer
	// holds: the answer gives it as compact_revision.
	compacted *uint64
}

// classify maps an error from an actor to an HTTP answer. write says
// whether the request changes state, which matters only for a timeout: then
// the client must learn that its write may still be applied.
func classify(err error, write bool) failure {
	var remote *door.RemoteError
	var compacted *messages.CompactedError
	switch {
	case errors.As(err, &compacted):
		return failure{status: http.StatusGone, reason: compacted.Error(), compacted: &compacted.Compacted}
	// Sizes before the rest: a value refused when its entry was applied
	// wraps both ErrEntryRefused and ErrValueTooLarge, and is a 413.
	case errors.Is(err, messages.ErrValueTooLarge), errors.Is(err, errTooLarge):
		return failure{status: http.StatusRequestEntityTooLarge, reason: err.Error()}
	// Leases before the refusals too: whether a put's lease exists, or a
	// grant's id is free, is decided when its entry is applied, and an
	// error wrapped in ErrEntryRefused is still the lease's: a put naming
	// a missing lease is a 404 (nothing written), as a revoke of one is.
	case errors.Is(err, messages.ErrLeaseNotFound):
		return failure{status: http.StatusNotFound, reason: err.Error()}
	case errors.Is(err, messages.ErrLeaseExists):
		return failure{status: http.StatusConflict, reason: err.Error()}
	case errors.Is(err, messages.ErrLeaseTTLTooLarge):
		return failure{status: http.StatusBadRequest, reason: err.Error()}
	case errors.Is(err, messages.ErrEmptyKey), errors.Is(err, messages.ErrKeyTooLarge),
		errors.Is(err, messages.ErrBadRequest), errors.Is(err, messages.ErrEntryRefused):
		// The client's to fix; nothing was written.
		return failure{status: http.StatusBadRequest, reason: err.Error()}
	case errors.Is(err, messages.ErrFutureRevision), errors.Is(err, messages.ErrInvalidTxn):
		return failure{status: http.StatusBadRequest, reason: err.Error()}
	case errors.As(err, &remote):
		return failure{status: remote.Status, reason: remote.Body}
	case errors.Is(err, messages.ErrTransferFailed):
		return failure{status: http.StatusGatewayTimeout, reason: err.Error()}
	case errors.Is(err, actor.ErrTimeout), errors.Is(err, messages.ErrTimeout):
		if write {
			return failure{status: http.StatusGatewayTimeout,
				reason: "request timed out: the outcome of the write is unknown, it may still be applied"}
		}
		return failure{status: http.StatusGatewayTimeout, reason: "request timed out"}
	case errors.Is(err, messages.ErrNoLeader):
		return failure{status: http.StatusServiceUnavailable, reason: "no leader: retry later", retryAfter: true}
	case errors.Is(err, messages.ErrProposalDropped):
		return failure{status: http.StatusServiceUnavailable, reason: "proposal dropped by raft: retry later", retryAfter: true}
	case errors.Is(err, messages.ErrRemoved):
		return failure{status: http.StatusServiceUnavailable, reason: "node is stopping: " + messages.ErrRemoved.Error()}
	case errors.Is(err, messages.ErrStopped):
		return failure{status: http.StatusServiceUnavailable, reason: "node is stopping"}
	case errors.Is(err, actor.ErrDeadLetter):
		// The target actor is gone, which happens only while the node stops.
		return failure{status: http.StatusServiceUnavailable, reason: "node is stopping: its actors are gone"}
	case errors.Is(err, apply.ErrNoSpace):
		// The state machine refused it when it applied the entry: nothing
		// was written, on any member.
		return failure{status: http.StatusInsufficientStorage, reason: err.Error()}
	case errors.Is(err, messages.ErrNotFound):
		return failure{status: http.StatusNotFound, reason: "key not found"}
	case errors.Is(err, messages.ErrUnknownMember):
		return failure{status: http.StatusNotFound, reason: "unknown member"}
	case errors.Is(err, messages.ErrMemberExists), errors.Is(err, messages.ErrPeerURLExists), errors.Is(err, messages.ErrIDRemoved),
		errors.Is(err, messages.ErrIDPrefixInUse),
		errors.Is(err, messages.ErrNotEnoughStarted), errors.Is(err, messages.ErrLearnerNotReady),
		errors.Is(err, messages.ErrNotLearner), errors.Is(err, messages.ErrIsLearner),
		errors.Is(err, messages.ErrConfChangeDeclined):
		// The cluster's state forbids the change; the reason says which
		// state, and whether waiting can help.
		return failure{status: http.StatusConflict, reason: err.Error()}
	case errors.Is(err, messages.ErrNotLeader), errors.Is(err, messages.ErrNoTransferee), errors.Is(err, messages.ErrConfChangePending),
		errors.Is(err, messages.ErrLeaseExpiring), errors.Is(err, messages.ErrDefragAborted):
		return failure{status: http.StatusServiceUnavailable, reason: err.Error(), retryAfter: true}
	case errors.Is(err, messages.ErrUnsupported):
		// The error says which operation the format lacks.
		return failure{status: http.StatusMethodNotAllowed, reason: err.Error()}
	case errors.Is(err, apply.ErrInvalidUTF8):
		return failure{status: http.StatusBadRequest, reason: err.Error()}
	case errors.Is(err, watch.ErrTooManyWatchers):
		return failure{status: http.StatusServiceUnavailable, reason: err.Error(), retryAfter: true}
	case errors.Is(err, errWatchNotConfigured):
		return failure{status: http.StatusServiceUnavailable, reason: err.Error()}
	default:
		return failure{status: http.StatusInternalServerError, reason: "internal error: " + err.Error()}
	}
}

// fail answers a failed request with the reason classify gives it, in the
// error shape of the request's route (writeError).
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error, write bool) {
	f := classify(err, write)
	h.logFailure(r, f.status, err)
	if f.retryAfter {
		w.Header().Set("Retry-After", "1")
	}
	if f.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", h.allowedBesides(r))
	}
	writeError(w, r, errorBody{Error: errorDetail{Code: f.status, Message: f.reason}, CompactRevision: f.compacted})
}

// errorBody is every error answer under /v1, one JSON object on one line:
//
//	{"error":{"code":404,"message":"key not found"}}
//
// A client reads the status from the body as well as from the status line
// (a proxy may replace the latter), and the message is for people. Beside
// the error go the few numbers a client acts on: a 412's revision and
// mod_revision (where the key is now), a 410's compact_revision (where the
// history starts). Pointers, so that a 0 is still sent.
type errorBody struct {
	Error           errorDetail `json:"error"`
	Revision        *uint64     `json:"revision,omitempty"`
	ModRevision     *uint64     `json:"mod_revision,omitempty"`
	CompactRevision *uint64     `json:"compact_revision,omitempty"`
}

type errorDetail struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// jsonErrors reports whether the route of r answers errors as errorBody.
// raftexample's routes (/<key>, /<id>) answer one line of text, as
// raftexample's clients expect, and so do /healthz and the peer API.
func jsonErrors(r *http.Request) bool {
	return r.URL.Path == "/v1" || strings.HasPrefix(r.URL.Path, "/v1/")
}

// writeError answers b.Error.Code with b, as JSON under /v1 and as one line
// of text elsewhere. Every error answer of the API goes through here, so
// that a route cannot answer in a shape of its own.
func writeError(w http.ResponseWriter, r *http.Request, b errorBody) {
	b.Error.Message = oneLine(b.Error.Message)
	if !jsonErrors(r) {
		http.Error(w, b.Error.Message, b.Error.Code)
		return
	}
	writeJSONError(w, b)
}

// writeJSONError answers b.Error.Code with b as JSON, on one line.
func writeJSONError(w http.ResponseWriter, b errorBody) {
	b.Error.Message = oneLine(b.Error.Message)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// The message is read as text: "<" stays "<", not \u003c.
	enc.SetEscapeHTML(false)
	// Strings and numbers only: encoding cannot fail.
	_ = enc.Encode(b)
	hd := w.Header()
	hd.Del("Content-Length")
	hd.Set("Content-Type", "application/json")
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(b.Error.Code)
	_, _ = w.Write(buf.Bytes())
}

// refuse answers a request the handler turned away itself, before asking
// any actor: status and the reason.
func refuse(w http.ResponseWriter, r *http.Request, status int, reason string) {
	writeError(w, r, errorBody{Error: errorDetail{Code: status, Message: reason}})
}

// allowedBesides is the Allow header of a 405 given because the state
// machine refused the operation: the route's methods, less the one refused.
func (h *handler) allowedBesides(r *http.Request) string {
	var kept []string
	for m := range strings.SplitSeq(h.routeMethods(r.URL.Path), ", ") {
		if m != "" && m != r.Method {
			kept = append(kept, m)
		}
	}
	return strings.Join(kept, ", ")
}

// logFailure logs server-side failures; 4xx are the client's business. The
// path holds the key, so it is cut (redact.NamedKey) as any key is.
func (h *handler) logFailure(r *http.Request, status int, err error) {
	if status < http.StatusInternalServerError {
		return
	}
	// No leader, a timeout, a full quota: the client was told, the
	// metrics count them, and an election alone makes a burst of them.
	// Only a 500 is news to an operator: a bug or a broken member.
	lvl := zap.DebugLevel
	if status == http.StatusInternalServerError {
		lvl = zap.ErrorLevel
	}
	h.log.Log(lvl, "client request failed",
		zap.String("method", r.Method),
		redact.NamedKey("path", r.URL.Path),
		zap.Int("status", status),
		redact.Error(err))
}

// writeJSON answers 200 with v.
func (h *handler) writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	h.writeJSONStatus(w, r, http.StatusOK, v)
}

// writeJSONStatus answers status with v. Encoding first means an encoding
// failure can still become a 500 instead of a truncated answer.
func (h *handler) writeJSONStatus(w http.ResponseWriter, r *http.Request, status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		h.fail(w, r, err, false)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// oneLine keeps an error body to one line whatever the wrapped errors
// contain.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
