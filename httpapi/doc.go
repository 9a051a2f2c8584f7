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
//   - /v1/members, /v1/members/<id>, /v1/members/<id>/promote, /v1/leader,
//     /v1/status, /healthz (members.go); /v1/digest (digest.go);
//   - raftexample's /<key> (GET, PUT) and /<id> (POST, DELETE).
//
// Which key a request names depends on the state machine's format: the
// dialect (dialect.go) decides, so that a client sees the same keys as
// raftexample's members would. Errors are one line of text with a status
// from one table (errors.go).
//
// The peer API (NewPeerHandler, peer.go) runs on the peer port: GET
// /members (a joining member learns the cluster it joins) and POST
// /members/promote/<id> (a follower hands a promotion to the leader).
package httpapi
