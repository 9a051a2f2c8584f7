// Package httpapi serves a member's HTTP APIs: the client API and the
// peers' /members endpoints. It keeps no state of its own: every request
// becomes one message to the kv actor (package kv) or the raft actor
// (package actors), asked with a future and answered with what the actor
// says, so that the actors stay the single owners of the data and of the
// raft state.
//
// The client API (NewHandler):
//
//   - /v1/kv/<key>: GET, PUT, DELETE (kv.go);
//   - /v1/watch/<key>: GET, a stream of Server-Sent Events served by a
//     watch.Stream of the watch hub (watch.go);
//   - /v1/leases, /v1/leases/<id>, /v1/leases/<id>/keepalive (lease.go);
//   - /v1/members, /v1/members/<id>, /v1/members/<id>/promote, /v1/leader,
//     /v1/status (members.go); /v1/digest (digest.go);
//   - /healthz, /livez, /readyz and /livez/<check>, /readyz/<check>: GET,
//     the health checks (health.go);
//   - /version: GET, this member's versions and the cluster's (version.go);
//   - /v1/snapshot: GET, a backup of the db (snapshot.go);
//     /v1/maintenance/defragment: POST (maintenance.go);
//   - raftexample's /<key> (GET, PUT) and /<id> (POST, DELETE).
//
// Which key a request names depends on the state machine's format: the
// dialect (dialect.go) decides, so that a client sees the same keys as
// raftexample's members would. The path is never cleaned: under /v1/kv/ the
// rest of it is the key, "//", "." and ".." included, so the handler must
// be served as it is, with no http.ServeMux around it (/metrics and
// /debug/pprof/ are served here for that reason).
//
// Nothing reaches an actor that the door can tell is wrong: keys over
// messages.MaxKeyBytes or empty, parameters a route does not take
// (params.go), malformed preconditions, bodies over the limit. Errors get
// their status from one table (classify, errors.go) and one shape
// (writeError): JSON {"error":{"code":N,"message":"..."}} under /v1, one
// line of text on raftexample's routes, as raftexample's clients expect.
//
// The metrics listener (NewHealthHandler, health.go) serves /metrics and
// the same health endpoints, from the same code, on a plain port of its
// own (--listen-metrics-urls), and nothing else: probes and Prometheus
// need no client certificate, and reach no data there.
//
// The peer API (NewPeerHandler, peer.go) runs on the peer port: GET
// /members (a joining member learns the cluster it joins), POST
// /members/promote/<id> (a follower hands a promotion to the leader), and
// POST /leases/<id>/keepalive and GET /leases/<id> (a follower hands what
// only the leader's deadlines can answer to the leader). A request handed
// to the leader is never handed on again. NewPeerVersionHandler serves
// GET /version there, which the other members ask for the cluster's
// version (version.go).
package httpapi
