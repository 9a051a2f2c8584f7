package messages

// The requests below come from the HTTP API to the kv actor, each by
// RequestFuture; the kv actor answers each with a Result once it is settled:
// a write once its entry is applied on this node, a linearizable read once a
// read index is known and applied, a serializable read at once.

// Put stores Value under Key.
type Put struct {
	Key   string
	Value []byte
	// Lease attaches the key to a lease (0: none; a put without one
	// detaches the key from the lease it had).
	Lease int64
}

// Delete removes Key. Deleting an absent key succeeds.
type Delete struct {
	Key string
}

// Get reads Key. Serializable reads skip the read-index round and may return
// stale data.
type Get struct {
	Key          string
	Serializable bool
}

// AddMember proposes adding member ID, reachable at PeerURL, as a voter or,
// with Learner, as a learner: a member that receives the log but neither
// votes nor counts for a quorum until it is promoted.
type AddMember struct {
	ID      uint64
	PeerURL string
	Learner bool
}

// PromoteMember proposes making learner ID a voter. Only the leader knows
// whether the learner has caught up, so a follower answers ErrNotLeader and
// the API asks the leader instead.
type PromoteMember struct {
	ID uint64
}

// RemoveMember proposes removing member ID.
type RemoveMember struct {
	ID uint64
}

// UpdateMember proposes moving member ID to PeerURL (raft's UpdateNode):
// the other members dial it there from then on. The member itself must be
// restarted listening at the new URL.
type UpdateMember struct {
	ID      uint64
	PeerURL string
}

// MembersRequest asks for the current member list, as applied.
type MembersRequest struct{}

// Member is one member of the cluster as the state machine knows it.
type Member struct {
	ID      uint64 `json:"id"`
	PeerURL string `json:"peer_url"`
	// ClientURLs are the URLs the member serves clients on
	// (--advertise-client-urls), as it published them once it started;
	// empty until then.
	ClientURLs []string `json:"client_urls"`
	Learner    bool     `json:"learner"`
}

// Result answers a client request. Err is nil on success; Value and Found are
// set for Get, with KV (the key and its revisions) when Found; Members
// (sorted by id) for MembersRequest; Succeeded and Results (one per
// operation of the branch that ran) for Txn, and Results[0] for Range.
// Index is the applied index the answer reflects; Revision the store's
// revision there: for a write that changed something, the revision that
// wrote it.
type Result struct {
	Value     []byte
	Found     bool
	KV        KV
	Members   []Member
	Index     uint64
	Revision  uint64
	Succeeded bool
	Results   []OpResult
	// Lease is a lease request's answer; Leases a LeaseList's.
	Lease  *Lease
	Leases []Lease
	Err    error
}

// DigestRequest asks for a digest of the applied key-value state, so that
// tests can check that members converge. It costs a sort of every key: it
// is for verification, not for the hot path.
type DigestRequest struct{}

// Digest answers DigestRequest: Sum is the hex SHA-256 of every key and
// value in key order, at applied index Index.
type Digest struct {
	Index uint64 `json:"index"`
	Keys  int    `json:"keys"`
	Sum   string `json:"sha256"`
}
