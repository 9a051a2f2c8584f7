package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/raftkv/node/door"
	"github.com/raftkv/node/internal/redact"
	"github.com/raftkv/node/messages"
)

// The health endpoints, served alike by the client API (NewHandler) and by
// the plain listener of --listen-metrics-urls (NewHealthHandler), from the
// code below:
//
//   - /healthz: 200 "ok" once the raft actor answers and names a leader
//     (this node's first health endpoint, kept as it was);
//   - /livez: the process and its actors answer (etcd 3.5+'s /livez);
//   - /readyz: the livez checks, and the member can serve: a leader is
//     known, this member has applied up to the cluster's commit index, and
//     no space alarm is raised (etcd's /readyz).
//
// /livez and /readyz answer as etcd and Kubernetes do: 200 "ok", with
// ?verbose a line per check first ("[+]name ok"); 503 with a line per
// check, the failed ones "[-]name failed: reason". ?exclude=name (again for
// more) leaves a check out, and /livez/<name>, /readyz/<name> run one.
const (
	healthzPath = "/healthz"
	livezPath   = "/livez"
	readyzPath  = "/readyz"
)

// checkTimeout bounds what a check waits for an actor. Under Kubernetes'
// default probe timeout (1 s), so that a failing probe gets the answer
// naming the failed check rather than its own timeout; and near an
// election timeout (1 s at the defaults): a raft actor that cannot answer
// within it is missing its heartbeats too, and a member that cannot apply
// up to the leader's commit index within it is not one to send clients to.
const checkTimeout = 800 * time.Millisecond

// The checks, by the names ?exclude= and the subpaths take.
const (
	checkRaftActor = "raft_actor"     // the raft actor answers a status request
	checkKVActor   = "kv_actor"       // the kv actor answers a status request
	checkLeader    = "leader"         // the raft actor names a leader
	checkApplied   = "applied"        // a linearizable read is served: applied reached the leader's commit index
	checkNoSpace   = "no_space_alarm" // the data is not too near the quota (etcd's NOSPACE alarm)
)

// needs says which answers a check reads, so that a request asks each
// actor at most once and only what its checks read.
type needs uint8

const (
	needStatus needs = 1 << iota // the raft actor's messages.Status
	needStore                    // the kv actor's messages.StoreStatus
	needRead                     // a linearizable read through the kv actor
)

// check is one line of /livez or /readyz.
type check struct {
	name  string
	needs needs
	run   func(p *probe) error
}

// livezChecks say whether the process should be restarted: only the
// member's own actors, never the cluster, so that a member cut off from
// its peers is not killed for it.
var livezChecks = []check{
	{checkRaftActor, needStatus, func(p *probe) error { return p.statusErr }},
	{checkKVActor, needStore, func(p *probe) error { return p.storeErr }},
}

// readyzChecks say whether clients should be sent here.
var readyzChecks = append(slices.Clip(livezChecks),
	check{checkLeader, needStatus, (*probe).leader},
	check{checkApplied, needRead, (*probe).applied},
	check{checkNoSpace, needStore, (*probe).noSpace},
)

// probe holds the actors' answers that one request's checks read.
type probe struct {
	status    messages.Status
	statusErr error
	store     messages.StoreStatus
	storeErr  error
	readErr   error
	bound     time.Duration
}

func (p *probe) leader() error {
	switch {
	case p.statusErr != nil:
		return errors.New("unknown: the raft actor did not answer")
	case p.status.Leader == 0:
		return messages.ErrNoLeader
	}
	return nil
}

// applied passes once a linearizable read was served: the kv actor
// answers it only after the leader confirmed a read index (its commit
// index, at least the one this member knows) and this member applied up
// to it. A member replaying its log, or receiving a snapshot (whose
// leader sends it no entries meanwhile), does not get there within the
// bound, whatever the commit index it knows itself.
func (p *probe) applied() error {
	switch {
	case p.readErr == nil:
		return nil
	case errors.Is(p.readErr, actor.ErrTimeout):
		return fmt.Errorf("not applied up to the leader's commit index within %v", p.bound)
	case errors.Is(p.readErr, messages.ErrNoLeader):
		return errors.New("no leader to learn the commit index from")
	}
	return fmt.Errorf("could not learn the commit index: %w", p.readErr)
}

func (p *probe) noSpace() error {
	switch {
	case p.storeErr != nil:
		return errors.New("unknown: the kv actor did not answer")
	case p.store.NoSpace:
		return fmt.Errorf("alarm NOSPACE: the data takes %d bytes, too near the quota for a request of the largest size", p.store.Used)
	}
	return nil
}

// health serves the health endpoints over a member's actors.
type health struct {
	actors door.Actors // Timeout bounds /healthz
	bound  time.Duration
	log    *zap.Logger
}

func newHealth(a door.Actors, lg *zap.Logger) health {
	bound := checkTimeout
	if a.Timeout > 0 {
		bound = min(bound, a.Timeout)
	}
	if lg == nil {
		lg = zap.NewNop()
	}
	return health{actors: a, bound: bound, log: lg}
}

// health is the handler's health endpoints.
func (h *handler) health() health { return newHealth(h.actors(), h.log) }

// serveProbe serves /livez, /readyz and their subpaths for the client API.
func (h *handler) serveProbe(w http.ResponseWriter, r *http.Request) { h.health().serveChecks(w, r) }

// probePath reports whether p is /livez, /readyz or one of their checks.
func probePath(p string) bool {
	return p == livezPath || p == readyzPath ||
		strings.HasPrefix(p, livezPath+"/") || strings.HasPrefix(p, readyzPath+"/")
}

// HealthConfig wires the listener of --listen-metrics-urls to a node's
// actors.
type HealthConfig struct {
	Root *actor.RootContext
	KV   *actor.PID
	Raft *actor.PID
	// Timeout bounds /healthz's wait for the raft actor (default 5 s, as
	// the client API's); the checks of /livez and /readyz wait at most
	// 800 ms, or Timeout when shorter.
	Timeout time.Duration
	Logger  *zap.Logger
	// Metrics, when set, serves GET /metrics.
	Metrics http.Handler
}

// NewHealthHandler returns the handler of the metrics listener: /metrics
// (when the config has it), /livez, /readyz and /healthz, answered as the
// client API answers them, and 404 for every other path, so that nothing
// of the data is reachable without the client API's certificates.
func NewHealthHandler(cfg HealthConfig) http.Handler {
	return healthHandler{
		h:       newHealth(door.Actors{Root: cfg.Root, KV: cfg.KV, Raft: cfg.Raft, Timeout: cfg.Timeout}, cfg.Logger),
		metrics: cfg.Metrics,
	}
}

type healthHandler struct {
	h       health
	metrics http.Handler
}

func (s healthHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case p == metricsPath && s.metrics != nil:
		s.metrics.ServeHTTP(w, r)
	case p == healthzPath:
		s.h.serveHealthz(w, r)
	case probePath(p):
		s.h.serveChecks(w, r)
	default:
		paths := "/livez, /readyz and /healthz"
		if s.metrics != nil {
			paths = "/metrics, " + paths
		}
		// Text whatever the path: no route here answers JSON.
		writeText(w, http.StatusNotFound, "not found: this listener serves "+paths+"\n")
	}
}

// serveHealthz reports healthy only when the raft actor answers and knows a
// leader: a node without one can serve no write and no linearizable read.
func (hc health) serveHealthz(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		refuseMethod(w, r, getOnly)
		return
	}
	st, err := hc.actors.AskStatus(r.Context())
	if err != nil {
		hc.unhealthy(w, r, fmt.Errorf("raft actor did not report its status: %w", err))
		return
	}
	if st.Leader == 0 {
		hc.unhealthy(w, r, messages.ErrNoLeader)
		return
	}
	writeText(w, http.StatusOK, "ok\n")
}

// unhealthy answers 503 whatever the cause, since a health checker needs only
// "take this node out of rotation"; the body says why. It logs at debug only:
// checkers poll, and a leaderless member already says so in raft's own log.
func (hc health) unhealthy(w http.ResponseWriter, r *http.Request, err error) {
	hc.log.Debug("unhealthy", zap.String("path", r.URL.Path), redact.Error(err))
	refuse(w, r, http.StatusServiceUnavailable, "unhealthy: "+err.Error())
}

// serveChecks serves /livez and /readyz, and /livez/<check>,
// /readyz/<check> (one check, as etcd serves them).
func (hc health) serveChecks(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		refuseMethod(w, r, getOnly)
		return
	}
	kind, one, sub := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	all := livezChecks
	if "/"+kind == readyzPath {
		all = readyzChecks
	}
	known := []string{"verbose", "exclude"}
	if sub {
		known = known[:1]
	}
	q, err := queryParams(r.URL.RawQuery, "GET "+r.URL.Path, known...)
	if err != nil {
		refuse(w, r, http.StatusBadRequest, err.Error())
		return
	}
	run, unmatched := selectChecks(all, one, sub, q["exclude"])
	if run == nil && sub {
		refuse(w, r, http.StatusNotFound, fmt.Sprintf("no check %s: /%s runs %s", echo(one), kind, checkNames(all)))
		return
	}
	p := hc.probe(r.Context(), run)
	var out strings.Builder
	failed := false
	for _, c := range run {
		if err := c.run(p); err != nil {
			failed = true
			fmt.Fprintf(&out, "[-]%s failed: %s\n", c.name, oneLine(err.Error()))
			hc.log.Debug("health check failed", zap.String("path", r.URL.Path), zap.String("check", c.name), redact.Error(err))
			continue
		}
		fmt.Fprintf(&out, "[+]%s ok\n", c.name)
	}
	if len(unmatched) > 0 {
		// Kept, not refused, as etcd and Kubernetes keep them: a probe
		// that names a check of another version must not fail for it.
		quoted := make([]string, len(unmatched))
		for i, n := range unmatched {
			quoted[i] = echo(n)
		}
		fmt.Fprintf(&out, "warn: no check to exclude named %s\n", strings.Join(quoted, ", "))
	}
	if failed {
		// Always the detail: the reason is what a probe's event shows.
		writeText(w, http.StatusServiceUnavailable, out.String())
		return
	}
	if !q.Has("verbose") {
		out.Reset()
	}
	writeText(w, http.StatusOK, out.String()+"ok\n")
}

// selectChecks picks the checks of a request: the one a subpath names (nil
// if none has its name), or all but the excluded; unmatched are the
// excluded names that name no check.
func selectChecks(all []check, one string, sub bool, exclude []string) (run []check, unmatched []string) {
	if sub {
		i := slices.IndexFunc(all, func(c check) bool { return c.name == one })
		if i < 0 {
			return nil, nil
		}
		return all[i : i+1], nil
	}
	run = []check{}
	for _, c := range all {
		if !slices.Contains(exclude, c.name) {
			run = append(run, c)
		}
	}
	for _, n := range exclude {
		if !slices.ContainsFunc(all, func(c check) bool { return c.name == n }) && !slices.Contains(unmatched, n) {
			unmatched = append(unmatched, n)
		}
	}
	return run, unmatched
}

func checkNames(cs []check) string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}

// probe asks the actors what the checks need, each at once and at most
// once, every ask bounded by hc.bound: a request takes about the bound at
// worst, however many checks fail.
func (hc health) probe(ctx context.Context, run []check) *probe {
	var want needs
	for _, c := range run {
		want |= c.needs
	}
	p := &probe{bound: hc.bound}
	a := hc.actors
	a.Timeout = hc.bound
	var wg sync.WaitGroup
	if want&needStatus != 0 {
		wg.Go(func() { p.status, p.statusErr = a.AskStatus(ctx) })
	}
	if want&needStore != 0 {
		wg.Go(func() { p.store, p.storeErr = a.AskStoreStatus(ctx) })
	}
	if want&needRead != 0 {
		// The empty key, which no write can create: the read costs a
		// lookup that finds nothing, after the read index.
		wg.Go(func() { _, p.readErr = a.AskKV(ctx, messages.Get{Key: ""}) })
	}
	wg.Wait()
	return p
}

// writeText answers status with body as plain text.
func writeText(w http.ResponseWriter, status int, body string) {
	hd := w.Header()
	hd.Set("Content-Type", "text/plain; charset=utf-8")
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}
