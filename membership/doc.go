// Package membership owns what a member knows about who is in its
// cluster, decided in one place and called by the others (etcd keeps the
// same in server/etcdserver/api/membership):
//
//   - the cluster id: derived from the initial members and
//     --initial-cluster-token (ClusterID), raftexample's fixed one, its hex
//     form (--cluster-id), and the refusal of a data dir of another
//     cluster or member (MismatchError);
//   - member ids: which ids may name a member (ValidID), and the rule that
//     two ids may not share a cluster, which the state machine's request
//     ids give (IDConflict, reqid.Shares): applied in --cluster and
//     to a member add;
//   - the --cluster format: bare URLs numbered 1..N, or id=URL entries;
//     duplicate ids and URLs refused (ParseCluster, FormatCluster);
//   - URLs of members: http:// or https://, a host and a port from 1 to
//     65535, nothing else, kept in one form with the port in decimal, so
//     that :022379 and :22379 are one URL in --cluster, in a member add and
//     when they are compared (ParseURL, PeerURL, SameURL);
//   - member records: the list clients and peers read (List, of
//     messages.Member, the wire type); which member changes the replicated
//     list allows (CheckAdd, CheckPromote, CheckRemove); what a member
//     that joins checks of the list a peer gives it (CheckJoined); and the
//     rule that merges the replicated list with the flags at start (AtStart,
//     KeepURL): the replicated list wins, a URL it lacks comes from the
//     flags, and a removed id never comes back;
//   - etcd's strict reconfiguration check (CheckStrict) and when a learner
//     has caught up enough to be promoted (LearnerCaughtUp).
//
// Everything here is a pure function of its arguments. The member lists
// themselves are kept by the state machine (package kv, in its db) and the
// raft actor (package actors); how they are stored is theirs. membership
// imports neither.
package membership
