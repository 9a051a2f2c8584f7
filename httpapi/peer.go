package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/raftkv/node/door"
	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/messages"
)

// The peer API: what members ask each other outside the raft protocol, on
// the peer port (so with the peers' TLS), as etcd's peer handler serves
// /members and /members/promote/<id>:
//
//   - GET /members: the cluster id (also in the X-Etcd-Cluster-ID header)
//     and the member list. A member that joins asks it to learn which
//     cluster it joins, and to check that it was added.
//   - POST /members/promote/<id>: a follower asked to promote a learner
//     hands the request to the leader, the only member that knows how far
//     the learner's log is.
//   - POST /leases/<id>/keepalive and GET /leases/<id> (keys=true): a
//     follower hands a lease's keep-alive, or the read of its remaining
//     TTL, to the leader, the only member that keeps deadlines (lease.go),
//     as etcd's peer handler serves /leases.
//
// Every answer carries this member's cluster id; the POSTs and the lease
// routes refuse a request that names another (412).
const (
	peerMembersPath  = "/members"
	peerPromotePath  = door.PeerPromotePath
	peerLeasesPrefix = door.PeerLeasesPrefix
	hdrClusterID     = door.HeaderClusterID
	// maxPeerAnswer bounds what is read of a peer's answer: a member list
	// of thousands of members fits many times over.
	maxPeerAnswer = 4 << 20
)

// PeerMembers is the answer to GET /members on the peer port. Format is the
// state machine's format: a member of another format must not join, whatever
// the cluster id (it could not apply the log).
type PeerMembers struct {
	ClusterID string            `json:"cluster_id"` // hex, as on the wire
	Format    string            `json:"format"`
	Members   []messages.Member `json:"members"`
}

// PeerHandlerConfig wires the peer API to a member's kv actor.
type PeerHandlerConfig struct {
	Root      *actor.RootContext
	KV        *actor.PID
	ClusterID uint64
	Format    apply.Format
	Timeout   time.Duration // per request; default 5 s
	Logger    *zap.Logger
}

// PeerPatterns returns the http.ServeMux patterns the peer API answers:
// mount NewPeerHandler on each, next to the transport's handler. A peer
// server that mounts fewer leaves its followers' lease keep-alives
// unanswered (502).
func PeerPatterns() []string {
	return []string{peerMembersPath, peerMembersPath + "/", peerLeasesPrefix}
}

// NewPeerHandler serves the peer API; mount it on the peer server next to
// the transport's handler, on PeerPatterns.
func NewPeerHandler(cfg PeerHandlerConfig) http.Handler {
	h := &handler{root: cfg.Root, kv: cfg.KV, timeout: cfg.Timeout, log: cfg.Logger}
	if h.timeout <= 0 {
		h.timeout = defaultTimeout
	}
	if h.log == nil {
		h.log = zap.NewNop()
	}
	id := strconv.FormatUint(cfg.ClusterID, 16)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(hdrClusterID, id)
		switch {
		case r.URL.Path == peerMembersPath:
			if ms, ok := h.members(w, r); ok {
				h.writeJSON(w, r, PeerMembers{ClusterID: id, Format: cfg.Format.String(), Members: ms})
			}
		case strings.HasPrefix(r.URL.Path, peerPromotePath):
			if r.Method != http.MethodPost {
				refuseMethod(w, r, "POST")
				return
			}
			if !sameCluster(w, r, id) {
				return
			}
			memberID, err := parseMemberID(strings.TrimPrefix(r.URL.Path, peerPromotePath))
			if err != nil {
				h.fail(w, r, err, false)
				return
			}
			// No second hop: a member that lost leadership meanwhile
			// answers 503 and the client retries.
			if _, err := h.askKV(messages.PromoteMember{ID: memberID}); err != nil {
				h.fail(w, r, err, true)
				return
			}
			h.writeMember(w, r, memberID)
		case strings.HasPrefix(r.URL.Path, peerLeasesPrefix):
			h.servePeerLease(w, r, id)
		default:
			notFound(w, r)
		}
	})
}

// sameCluster refuses a request another cluster's member sent (412): a
// member of this one may name another lease, or member, by the same id.
// It answers the client itself and reports whether to go on.
func sameCluster(w http.ResponseWriter, r *http.Request, id string) bool {
	if got := r.Header.Get(hdrClusterID); got != id {
		refuse(w, r, http.StatusPreconditionFailed,
			fmt.Sprintf("cluster ID mismatch: the request is for cluster %s, this member is in %s", echo(got), id))
		return false
	}
	return true
}

// PeerCluster is what a member tells another of its cluster.
type PeerCluster struct {
	ID      uint64
	Format  apply.Format
	Members []messages.Member
}

// FetchPeerMembers asks the member at peerURL for its cluster id, format and
// member list (GET /members on its peer port). A peer that does not serve
// it (an etcd raftexample member) answers 404.
func FetchPeerMembers(ctx context.Context, client *http.Client, peerURL string) (PeerCluster, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, peerURL+peerMembersPath, nil)
	if err != nil {
		return PeerCluster{}, fmt.Errorf("ask %s for its members: %w", peerURL, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return PeerCluster{}, fmt.Errorf("ask %s for its members: %w", peerURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPeerAnswer))
	if err != nil {
		return PeerCluster{}, fmt.Errorf("read the members of %s: %w", peerURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return PeerCluster{}, fmt.Errorf("%s answered %s: %s", peerURL, resp.Status, oneLine(string(body)))
	}
	var pm PeerMembers
	if err := json.Unmarshal(body, &pm); err != nil {
		return PeerCluster{}, fmt.Errorf("members of %s: %w", peerURL, err)
	}
	id, err := strconv.ParseUint(pm.ClusterID, 16, 64)
	if err != nil || id == 0 {
		return PeerCluster{}, fmt.Errorf("members of %s: bad cluster id %q", peerURL, pm.ClusterID)
	}
	f, err := apply.ParseFormat(pm.Format)
	if err != nil {
		return PeerCluster{}, fmt.Errorf("members of %s: %w", peerURL, err)
	}
	return PeerCluster{ID: id, Format: f, Members: pm.Members}, nil
}

// askLeader hands a request that only the leader can answer to the
// leader's peer API (door.Leader.Ask): a request makes one hop at most,
// since the peer API never hands one on again.
func (h *handler) askLeader(r *http.Request, what, method, target string) ([]byte, error) {
	l := door.Leader{Actors: h.actors(), Client: h.peerClient, ClusterID: h.clusterID}
	return l.Ask(r.Context(), what, method, target)
}

// promoteAtLeader hands a promotion to the leader's peer API and returns
// its answer: the member as the leader, which applied the promotion, lists
// it (this member may not have applied it yet).
func (h *handler) promoteAtLeader(r *http.Request, id uint64) ([]byte, error) {
	return h.askLeader(r, "promote", http.MethodPost, peerPromotePath+strconv.FormatUint(id, 10))
}
