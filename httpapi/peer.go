package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

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
	peerPromotePath  = "/members/promote/"
	peerLeasesPrefix = "/leases/"
	// hdrClusterID is rafthttp's cluster id header, used here alike.
	hdrClusterID = "X-Etcd-Cluster-ID"
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

// remoteError is the answer of the member a request was handed to: the
// client gets it as it was given.
type remoteError struct {
	status int
	body   string
}

func (e *remoteError) Error() string {
	return fmt.Sprintf("the leader answered %d: %s", e.status, e.body)
}

// askLeader hands a request that only the leader can answer to the
// leader's peer API (method and target, the path and query there) and
// returns the body of its 200; another answer is a *remoteError, passed on
// to the client as the leader gave it. what names the request in errors.
// The peer API never hands a request on again (NewPeerHandler), so a
// request makes one hop at most.
func (h *handler) askLeader(r *http.Request, what, method, target string) ([]byte, error) {
	if h.peerClient == nil {
		return nil, fmt.Errorf("%w; ask the leader", messages.ErrNotLeader)
	}
	st, err := h.askStatus()
	if err != nil {
		return nil, err
	}
	leaderURL := st.Members[st.Leader]
	if st.Leader == 0 || leaderURL == "" {
		return nil, messages.ErrNoLeader
	}
	if st.Leader == st.ID {
		// Raft made this member leader and the kv actor has not heard yet:
		// asking itself through the peer port would only be refused again.
		return nil, fmt.Errorf("%w yet: it has just been elected; retry", messages.ErrNotLeader)
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, leaderURL+target, nil)
	if err != nil {
		return nil, fmt.Errorf("%s at the leader: %w", what, err)
	}
	req.Header.Set(hdrClusterID, strconv.FormatUint(h.clusterID, 16))
	resp, err := h.peerClient.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("%s at the leader: %w", what, messages.ErrTimeout)
		}
		return nil, fmt.Errorf("%w: could not reach the leader (%d): %w", messages.ErrNoLeader, st.Leader, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPeerAnswer))
	if err != nil {
		return nil, fmt.Errorf("read the leader's answer: %w", err)
	}
	if resp.StatusCode == http.StatusOK {
		return body, nil
	}
	return nil, &remoteError{status: resp.StatusCode, body: string(bytes.TrimSpace(body))}
}

// promoteAtLeader hands a promotion to the leader's peer API and returns
// its answer: the member as the leader, which applied the promotion, lists
// it (this member may not have applied it yet).
func (h *handler) promoteAtLeader(r *http.Request, id uint64) ([]byte, error) {
	return h.askLeader(r, "promote", http.MethodPost, peerPromotePath+strconv.FormatUint(id, 10))
}
