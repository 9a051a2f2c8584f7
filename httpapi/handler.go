package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/raftkv/node/kv"
	"github.com/raftkv/node/messages"
	"github.com/raftkv/node/watch"
)

// HandlerConfig wires the HTTP API to a node's actors.
type HandlerConfig struct {
	Root            *actor.RootContext // system.Root of the node's actor system
	KV              *actor.PID         // kv actor: takes the client requests of package messages, answers messages.Result
	Raft            *actor.PID         // raft actor: takes messages.StatusRequest, answers messages.Status
	Timeout         time.Duration      // per request; default 5s
	MaxRequestBytes int64              // body limit; default 1.5 MiB
	Logger          *zap.Logger        // nil means no logging
	// Format must be the kv actor's: it decides which key a request names
	// and which writes are refused before they reach the kv actor.
	Format kv.Format
	// PeerClient reaches the other members' peer API (with the peers' TLS),
	// to hand the leader a promotion asked of a follower; ClusterID goes
	// with it. Nil answers such a request 503, naming the leader.
	PeerClient *http.Client
	ClusterID  uint64
	// Watch is the watch hub (package watch), and History the db's
	// history that a watch from a past revision reads first. A nil Watch
	// answers /v1/watch 503; a nil History answers a past start 410.
	Watch   *actor.PID
	History watch.History
}

const (
	defaultTimeout         = 5 * time.Second
	defaultMaxRequestBytes = 3 << 19 // 1.5 MiB: etcd's default request limit
)

const (
	kvPrefix      = "/v1/kv/"
	compatMethods = "GET, PUT, POST, DELETE"
	getOnly       = "GET"
)

// errAPINotWired is the error of a request whose target actor was not given
// to NewHandler; asking a nil PID would panic inside protoactor.
var errAPINotWired = errors.New("http api: actor not configured")

// handler serves the client API. It keeps no state of its own: every
// request becomes one message to the kv or raft actor, so that the actors
// stay the single owners of the data and of the raft state.
type handler struct {
	root    *actor.RootContext
	kv      *actor.PID
	raft    *actor.PID
	timeout time.Duration
	maxBody int64
	log     *zap.Logger
	dialect dialect
	// peerClient and clusterID reach the leader's peer API.
	peerClient *http.Client
	clusterID  uint64
	// watch and history serve /v1/watch (watch.go).
	watch   *actor.PID
	history watch.History
	// broken, when set, is why every request fails: a handler guessing at
	// an unknown format could store keys no other member would find.
	broken error
}

// NewHandler returns the client HTTP API of a node: the /v1 routes, /healthz,
// and the raftexample-compatible /<key> and /<id> routes. /metrics is not
// served here (it answers 404), so the caller can mount it next to this
// handler.
func NewHandler(cfg HandlerConfig) http.Handler {
	h := &handler{
		root:    cfg.Root,
		kv:      cfg.KV,
		raft:    cfg.Raft,
		timeout: cfg.Timeout,
		maxBody: cfg.MaxRequestBytes,
		log:     cfg.Logger,

		peerClient: cfg.PeerClient,
		clusterID:  cfg.ClusterID,

		watch:   cfg.Watch,
		history: cfg.History,
	}
	if h.timeout <= 0 {
		h.timeout = defaultTimeout
	}
	if h.maxBody <= 0 {
		h.maxBody = defaultMaxRequestBytes
	}
	if h.log == nil {
		h.log = zap.NewNop()
	}
	h.dialect, h.broken = dialectOf(cfg.Format)
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.broken != nil {
		h.fail(w, r, h.broken, false)
		return
	}
	p := r.URL.Path
	switch {
	case p == "/healthz":
		h.serveHealth(w, r)
	case p == "/v1/members":
		h.serveMembers(w, r)
	case strings.HasPrefix(p, membersPrefix):
		h.serveMember(w, r)
	case p == "/v1/leader":
		h.serveLeader(w, r)
	case p == "/v1/status":
		h.serveStatus(w, r)
	case p == "/v1/digest":
		h.serveDigest(w, r)
	case p == txnPath:
		h.serveTxn(w, r)
	case strings.HasPrefix(p, kvPrefix):
		h.serveKV(w, r)
	case strings.HasPrefix(p, watchPrefix):
		h.serveWatch(w, r)
	case reservedPath(p):
		http.NotFound(w, r)
	default:
		h.serveCompat(w, r, strings.TrimPrefix(p, "/"))
	}
}

// reservedPath reports whether p belongs to a route family of this node
// rather than to a raftexample key. Whole segments are compared so that keys
// such as "metricsfoo" stay reachable through /<key>.
func reservedPath(p string) bool {
	first, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	switch first {
	case "v1", "healthz", "metrics":
		return true
	}
	return false
}

// serveCompat serves raftexample's routes, where the method decides whether
// the path names a key (GET, PUT) or a member id (POST, DELETE). Which key
// is the dialect's choice; name is the path without its slash.
func (h *handler) serveCompat(w http.ResponseWriter, r *http.Request, name string) {
	switch r.Method {
	case http.MethodGet:
		key, params := h.dialect.compatKey(r)
		h.getKey(w, r, key, params)
	case http.MethodPut:
		key, _ := h.dialect.compatKey(r)
		h.putKey(w, r, key, http.StatusNoContent)
	case http.MethodPost:
		h.addMember(w, r, name, false)
	case http.MethodDelete:
		h.removeMember(w, r, name, http.StatusNoContent)
	default:
		methodNotAllowed(w, compatMethods)
	}
}

// routeMethods lists the methods the route of path p serves, "" for a path
// no route serves.
func (h *handler) routeMethods(p string) string {
	switch {
	case p == "/healthz", p == "/v1/members", p == "/v1/status":
		return getOnly
	case p == "/v1/leader", p == txnPath:
		return "POST"
	case strings.HasPrefix(p, membersPrefix):
		if strings.HasSuffix(p, "/promote") {
			return "POST"
		}
		return "POST, DELETE"
	case strings.HasPrefix(p, kvPrefix):
		return h.dialect.kvMethods()
	case strings.HasPrefix(p, watchPrefix):
		return getOnly
	case reservedPath(p):
		return ""
	}
	return compatMethods
}

// methodNotAllowed answers 405 with the Allow header RFC 9110 requires.
func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	http.Error(w, "method not allowed; allowed: "+allow, http.StatusMethodNotAllowed)
}

// ask sends msg to pid and waits for the answer for at most the configured
// timeout. An actor that answers with an error value fails the request.
func (h *handler) ask(pid *actor.PID, msg any) (any, error) {
	if h.root == nil || pid == nil {
		return nil, errAPINotWired
	}
	reply, err := h.root.RequestFuture(pid, msg, h.timeout).Result()
	if err != nil {
		return nil, fmt.Errorf("waiting for the answer to %T: %w", msg, err)
	}
	if e, ok := reply.(error); ok {
		return nil, fmt.Errorf("answer to %T: %w", msg, e)
	}
	return reply, nil
}

// askKV sends msg to the kv actor. The error is the transport's or the
// Result's own, so a caller can only see success when Result.Err is nil.
func (h *handler) askKV(msg any) (messages.Result, error) {
	reply, err := h.ask(h.kv, msg)
	if err != nil {
		return messages.Result{}, err
	}
	var res messages.Result
	switch v := reply.(type) {
	case messages.Result:
		res = v
	case *messages.Result:
		if v == nil {
			return messages.Result{}, fmt.Errorf("kv actor answered %T with a nil result", msg)
		}
		res = *v
	default:
		return messages.Result{}, fmt.Errorf("kv actor answered %T with unexpected %T", msg, reply)
	}
	if res.Err != nil {
		return res, res.Err
	}
	return res, nil
}

// askStatus asks the raft actor for its status.
func (h *handler) askStatus() (messages.Status, error) {
	reply, err := h.ask(h.raft, messages.StatusRequest{})
	if err != nil {
		return messages.Status{}, err
	}
	switch v := reply.(type) {
	case messages.Status:
		return v, nil
	case *messages.Status:
		if v != nil {
			return *v, nil
		}
	}
	return messages.Status{}, fmt.Errorf("raft actor answered StatusRequest with unexpected %T", reply)
}

// readBody reads the whole request body, refusing more than the configured
// limit. On failure it has already answered the client (413 or 400) and
// returns ok == false, so nothing is proposed for an oversized request.
func (h *handler) readBody(w http.ResponseWriter, r *http.Request) (body []byte, ok bool) {
	if r.ContentLength > h.maxBody {
		tooLarge(w, h.maxBody)
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			tooLarge(w, tooBig.Limit)
			return nil, false
		}
		http.Error(w, "reading request body: "+oneLine(err.Error()), http.StatusBadRequest)
		return nil, false
	}
	return body, true
}

func tooLarge(w http.ResponseWriter, limit int64) {
	http.Error(w, fmt.Sprintf("request body exceeds the limit of %d bytes", limit),
		http.StatusRequestEntityTooLarge)
}
