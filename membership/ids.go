package membership

import "math"

// MaxID is the largest member id: raft takes 0 for "none", and the two
// largest ids for its local storage threads (raft.LocalAppendThread and
// raft.LocalApplyThread).
const MaxID = math.MaxUint64 - 2

// ValidID says whether id may name a member: 1 to MaxID.
func ValidID(id uint64) bool { return id != 0 && id <= MaxID }

// IDConflict says whether ids a and b may not belong to one cluster
// together. The state machine defines it (reqid.Shares: members
// whose ids share their low 16 bits would make request ids of one prefix),
// next to the request ids it comes from; membership applies it wherever ids
// meet: in --cluster (ParseCluster) and to a member add (CheckAdd). Nil
// lets any two distinct ids be members together.
type IDConflict func(a, b uint64) bool
