// Package door holds what the member's two client doors share: the HTTP
// API (package httpapi) and etcd's v3 gRPC API (package etcdapi). Neither
// door keeps state; both reach the same actors the same way:
//
//   - Actors asks the kv actor (package kv) or the raft actor (package
//     actors) with a future bounded by the request's deadline and the
//     door's timeout, and turns a missing or odd answer into an error the
//     door's error table knows (actor.ErrTimeout, actor.ErrDeadLetter);
//   - Leader hands what only the leader can answer (a lease's keep-alive
//     or remaining TTL, a learner's promotion) to the leader's peer API,
//     once: the peer API never hands a request on again.
//
// It sends the kv actor the client requests of package messages and the
// raft actor messages.StatusRequest; it takes nothing.
package door
