package door

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/raftkv/node/messages"
)

// Peer API routes a door hands requests to, on the leader's peer port
// (httpapi.NewPeerHandler serves them).
const (
	PeerPromotePath  = "/members/promote/"
	PeerLeasesPrefix = "/leases/"
	// HeaderClusterID is rafthttp's cluster id header, used alike on the
	// peer API: the leader refuses a request that names another cluster.
	HeaderClusterID = "X-Etcd-Cluster-ID"
	// maxPeerAnswer bounds what is read of a peer's answer: a lease with
	// thousands of keys fits many times over.
	maxPeerAnswer = 4 << 20
)

// RemoteError is the answer of the member a request was handed to: the
// client gets it as it was given.
type RemoteError struct {
	Status int
	Body   string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("the leader answered %d: %s", e.Status, e.Body)
}

// Leader hands requests to the leader's peer API.
type Leader struct {
	Actors
	// Client reaches the other members' peer API (with the peers' TLS).
	// Nil answers every hand-off messages.ErrNotLeader.
	Client    *http.Client
	ClusterID uint64
}

// Ask hands a request that only the leader can answer to the leader's
// peer API (method and target, the path and query there) and returns the
// body of its 200; another answer is a *RemoteError. what names the
// request in errors.
func (l Leader) Ask(ctx context.Context, what, method, target string) ([]byte, error) {
	if l.Client == nil {
		return nil, fmt.Errorf("%w; ask the leader", messages.ErrNotLeader)
	}
	st, err := l.AskStatus(ctx)
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
	ctx, cancel := context.WithTimeout(ctx, l.timeout(ctx))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, leaderURL+target, nil)
	if err != nil {
		return nil, fmt.Errorf("%s at the leader: %w", what, err)
	}
	req.Header.Set(HeaderClusterID, strconv.FormatUint(l.ClusterID, 16))
	resp, err := l.Client.Do(req)
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
	return nil, &RemoteError{Status: resp.StatusCode, Body: string(bytes.TrimSpace(body))}
}
