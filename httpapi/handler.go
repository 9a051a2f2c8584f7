package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/raftkv/node/door"
	"github.com/raftkv/node/kv/apply"
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
	Format apply.Format
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
	// Metrics, when set, serves GET /metrics; Debug, when set, serves
	// /debug/pprof/ and every path under it. They are served from here,
	// not from an http.ServeMux around this handler: a ServeMux cleans
	// paths and redirects, so /v1/kv//a would be answered 301 to
	// /v1/kv/a, and a client that follows it writes another key.
	Metrics http.Handler
	Debug   http.Handler
	// Backups streams the db for GET /v1/snapshot (kv.State); nil
	// answers it 503.
	Backups door.BackupSource
	// Quota is --quota-backend-bytes (0: none), for /v1/status.
	Quota uint64
}

const (
	defaultTimeout         = 5 * time.Second
	defaultMaxRequestBytes = 3 << 19 // 1.5 MiB: etcd's default request limit
)

const (
	kvPrefix      = "/v1/kv/"
	compatMethods = "GET, PUT, POST, DELETE"
	getOnly       = "GET"
	// keyMethods are the methods of raftexample's /<key> when the path is
	// no member id: POST and DELETE /<id> are membership changes.
	keyMethods  = "GET, PUT"
	metricsPath = "/metrics"
	debugPrefix = "/debug/pprof/"
)

// errAPINotWired is the error of a request whose target actor was not given
// to NewHandler; asking a nil PID would panic inside protoactor.
var errAPINotWired = door.ErrNotWired

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
	// metrics and debug are HandlerConfig's Metrics and Debug; nil leaves
	// their paths to the routes below.
	metrics http.Handler
	debug   http.Handler
	backups door.BackupSource
	quota   uint64
	// broken, when set, is why every request fails: a handler guessing at
	// an unknown format could store keys no other member would find.
	broken error
}

// NewHandler returns the client HTTP API of a node: the /v1 routes, /healthz,
// the raftexample-compatible /<key> and /<id> routes, and /metrics and
// /debug/pprof/ when the config gives their handlers (/metrics answers 404
// otherwise). Serve it as the server's handler, with nothing around it that
// rewrites paths: the rest of a path under /v1/kv/ is the key, byte for
// byte, "//", "." and ".." included.
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

		metrics: cfg.Metrics,
		debug:   cfg.Debug,
		backups: cfg.Backups,
		quota:   cfg.Quota,
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
	// r.URL.Path is the request's path percent-decoded once, and never
	// cleaned: no route below rewrites it.
	p := r.URL.Path
	switch {
	case p == metricsPath && h.metrics != nil:
		h.metrics.ServeHTTP(w, r)
	case h.debug != nil && (strings.HasPrefix(p, debugPrefix) || p+"/" == debugPrefix):
		h.debug.ServeHTTP(w, r)
	case p == "/healthz":
		h.serveHealth(w, r)
	case probePath(p):
		h.serveProbe(w, r)
	case p == versionPath:
		h.serveVersion(w, r)
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
	case p == snapshotPath:
		h.serveSnapshot(w, r)
	case p == defragmentPath:
		h.serveDefragment(w, r)
	case p == txnPath:
		h.serveTxn(w, r)
	case strings.HasPrefix(p, kvPrefix):
		h.serveKV(w, r)
	case strings.HasPrefix(p, watchPrefix):
		h.serveWatch(w, r)
	case p == leasesPath || strings.HasPrefix(p, leasesPrefix):
		h.serveLeases(w, r)
	case reservedPath(p):
		notFound(w, r)
	default:
		h.serveCompat(w, r, strings.TrimPrefix(p, "/"))
	}
}

// notFound answers a path of a reserved family that no route serves.
func notFound(w http.ResponseWriter, r *http.Request) {
	reason := "not found"
	if jsonErrors(r) {
		reason = "no route: the /v1 routes are /v1/kv/<key>, /v1/txn, /v1/watch/<key>, " +
			"/v1/members, /v1/members/<id>, /v1/members/<id>/promote, /v1/leases, /v1/leases/<id>, /v1/leases/<id>/keepalive, " +
			"/v1/leader, /v1/status, /v1/digest, /v1/snapshot and /v1/maintenance/defragment"
	}
	refuse(w, r, http.StatusNotFound, reason)
}

// reservedPath reports whether p belongs to a route family of this node
// rather than to a raftexample key. Whole segments are compared so that keys
// such as "metricsfoo" stay reachable through /<key>.
func reservedPath(p string) bool {
	first, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	switch first {
	case "v1", "healthz", "metrics", "livez", "readyz", "version":
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
		key, params := h.dialect.compatKey(r)
		query := queryIsKey
		if params {
			query = queryNone
		}
		h.putKey(w, r, key, http.StatusNoContent, query)
	case http.MethodPost, http.MethodDelete:
		id, ok := h.compatMemberID(w, r, name)
		if !ok {
			return
		}
		if r.Method == http.MethodPost {
			h.addMember(w, r, id, false)
		} else {
			h.removeMember(w, r, id, http.StatusNoContent)
		}
	default:
		refuseMethod(w, r, compatMethods)
	}
}

// compatMemberID reads the member id of raftexample's POST and DELETE /<id>.
// A path that is no number names a key, and a key takes neither method:
// that is 405 (a client deleting a key through raftexample's route, which
// has no delete, learns where deletes are), not a 400 about ids. A number
// that is no valid id is 400. The path is never echoed: it may be a key.
func (h *handler) compatMemberID(w http.ResponseWriter, r *http.Request, name string) (uint64, bool) {
	id, err := parseMemberID(name)
	if errors.Is(err, errNotANumber) {
		reason := "POST /<id> adds member <id>, and this path names no member id: " +
			"write a key with PUT /<key> or PUT /v1/kv/<key>"
		if r.Method == http.MethodDelete {
			reason = "DELETE /<id> removes member <id>, and this path names no member id: " +
				"delete a key with DELETE /v1/kv/<key>"
			if h.dialect.checkDelete() != nil {
				reason += " (which this member's raftexample format does not have)"
			}
		}
		w.Header().Set("Allow", keyMethods)
		refuse(w, r, http.StatusMethodNotAllowed, reason)
		return 0, false
	}
	if err == nil {
		_, err = queryParams(r.URL.RawQuery, r.Method+" /<id>")
	}
	if err != nil {
		h.fail(w, r, err, false)
		return 0, false
	}
	return id, true
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
	case p == leasesPath || strings.HasPrefix(p, leasesPrefix):
		switch rest, item := strings.CutPrefix(p, leasesPrefix); {
		case h.dialect.checkLeases() != nil:
			return ""
		case !item:
			return leasesMethods
		case strings.HasSuffix(rest, "/"+keepAliveAction):
			return "POST"
		}
		return leaseMethods
	case reservedPath(p):
		return ""
	}
	return compatMethods
}

// refuseMethod answers 405 with the Allow header RFC 9110 requires, in the
// error shape of r's route.
func refuseMethod(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	refuse(w, r, http.StatusMethodNotAllowed, "method not allowed; allowed: "+allow)
}

// methodNotAllowed is refuseMethod for a route under /v1, for callers
// that have no request at hand.
func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeJSONError(w, errorBody{Error: errorDetail{Code: http.StatusMethodNotAllowed, Message: "method not allowed; allowed: " + allow}})
}

// ask sends msg to pid and waits for the answer for at most the configured
// timeout (door.Actors.Ask).
func (h *handler) ask(pid *actor.PID, msg any) (any, error) {
	return h.actors().Ask(context.Background(), pid, msg)
}

// askKV sends msg to the kv actor (door.Actors.AskKV).
func (h *handler) askKV(msg any) (messages.Result, error) {
	return h.actors().AskKV(context.Background(), msg)
}

// askStatus asks the raft actor for its status.
func (h *handler) askStatus() (messages.Status, error) {
	return h.actors().AskStatus(context.Background())
}

// actors is how the handler reaches the kv and raft actors.
func (h *handler) actors() door.Actors {
	return door.Actors{Root: h.root, KV: h.kv, Raft: h.raft, Timeout: h.timeout}
}

// readBody reads the whole request body, refusing more than the configured
// limit. On failure it has already answered the client (413 or 400) and
// returns ok == false, so nothing is proposed for an oversized request.
func (h *handler) readBody(w http.ResponseWriter, r *http.Request) (body []byte, ok bool) {
	if r.ContentLength > h.maxBody {
		tooLarge(w, r, h.maxBody)
		return nil, false
	}
	var err error
	if n := r.ContentLength; n >= 0 {
		// The length is known and within the limit, and net/http reads no
		// more than it: one buffer of exactly that size, where ReadAll
		// would grow one from 512 bytes (6 % of the leader's allocations
		// at 64 clients).
		body = make([]byte, n)
		if _, err = io.ReadFull(r.Body, body); err != nil {
			refuse(w, r, http.StatusBadRequest, "reading request body: "+err.Error())
			return nil, false
		}
		return body, true
	}
	body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			tooLarge(w, r, tooBig.Limit)
			return nil, false
		}
		refuse(w, r, http.StatusBadRequest, "reading request body: "+err.Error())
		return nil, false
	}
	return body, true
}

func tooLarge(w http.ResponseWriter, r *http.Request, limit int64) {
	refuse(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds the limit of %d bytes", limit))
}
