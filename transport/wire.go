package transport

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The peer protocol is etcd's rafthttp (v3.x), so members of ours and
// unmodified etcd raftexample members can form one cluster.
const (
	pathPipeline      = "/raft"
	pathStreamPrefix  = "/raft/stream/"
	pathStreamMsgApp  = "/raft/stream/msgapp/"
	pathStreamMessage = "/raft/stream/message/"
	pathProbing       = "/raft/probing"
	pathSnapshot      = "/raft/snapshot"

	hdrFrom       = "X-Server-From"
	hdrVersion    = "X-Server-Version"
	hdrMinCluster = "X-Min-Cluster-Version"
	hdrClusterID  = "X-Etcd-Cluster-ID"
	hdrTo         = "X-Raft-To"
	hdrPeerURLs   = "X-PeerURLs"

	// protocolVersion is the rafthttp version we claim. Peers compare only
	// major.minor: 3.7 speaks both stream types, and a 3.x peer accepts it
	// as long as its minimum cluster version is at most 3.7.
	protocolVersion = "3.7.0"
	// minClusterVersion is the oldest peer we talk to: every 3.x rafthttp
	// has the msgappv2 and message streams.
	minClusterVersion = "3.0.0"
)

// Timeouts and sizes, each with the reason for its value.
const (
	// connReadTimeout and connWriteTimeout bound each read and write on a
	// peer connection (not a whole request): 5 s is rafthttp's, so a stream
	// to an etcd peer is judged dead exactly when that peer judges it.
	connReadTimeout  = 5 * time.Second
	connWriteTimeout = 5 * time.Second
	// snapshotAnswerTimeout is how long a snapshot's receiver may take to
	// answer once the last byte is written: it makes the whole db durable
	// and checks every page of it first, and for a db of several GiB on a
	// slow disk that takes minutes. A receiver that takes longer counts as
	// failed and raft sends the snapshot again, so too short a bound would
	// never let a large db through; rafthttp has none.
	snapshotAnswerTimeout = 10 * time.Minute
	// heartbeatInterval keeps an idle stream inside the reader's timeout
	// with two beats to spare.
	heartbeatInterval = connReadTimeout / 3
	// dialTimeout bounds a TCP connect. Peers are on a LAN; a member that
	// takes longer to accept is as good as down, and a pipeline waiting on
	// it would hold up the messages queued behind.
	dialTimeout = time.Second
	// redialInterval paces a stream reader's attempts to reach a peer that
	// is down: rafthttp's rate, fast enough to rejoin within a heartbeat.
	redialInterval = 100 * time.Millisecond

	// peerQueueSize bounds the messages a peer holds that are neither
	// written nor dropped: rafthttp's stream buffer, enough for a leader's
	// full inflight window (MaxInflightMsgs is 256 by default) many times
	// over, small enough that a stalled peer costs bounded memory.
	peerQueueSize = 4096
	// pipelineQueueSize bounds what waits for the pipeline, which sends
	// one message per POST: rafthttp's pipeline buffer. Beyond it a slow
	// peer gets dropped messages, which raft resends, not a growing backlog.
	pipelineQueueSize = 64
	// maxMessageBytes refuses a frame or pipeline body that claims more,
	// so a corrupt length cannot make us allocate without bound. It is
	// rafthttp's stream limit and far above any MsgApp (MaxSizePerMsg).
	maxMessageBytes = 512 << 20
)

// Errors a peer reports in the body of a 412 answer. The texts are
// rafthttp's: an etcd peer tells the two cases apart by them.
var (
	// ErrIncompatibleVersion is a peer whose protocol version cannot talk
	// with ours.
	ErrIncompatibleVersion = errors.New("incompatible version")
	// ErrClusterIDMismatch is a peer that belongs to another cluster.
	ErrClusterIDMismatch = errors.New("cluster ID mismatch")
)

// formatID writes a member id the way rafthttp does: lowercase hex.
func formatID(id uint64) string { return strconv.FormatUint(id, 16) }

// parseID reads a member id written by formatID.
func parseID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("member id %q: %w", s, err)
	}
	return id, nil
}

// setHeaders sets what every request to a peer carries.
func (t *HTTP) setHeaders(h http.Header) {
	h.Set(hdrFrom, formatID(t.cfg.ID))
	h.Set(hdrVersion, protocolVersion)
	h.Set(hdrMinCluster, minClusterVersion)
	h.Set(hdrClusterID, formatID(t.cfg.ClusterID))
	if t.cfg.URL != "" {
		h.Set(hdrPeerURLs, t.cfg.URL)
	}
}

// checkCompatible checks a peer's request headers: protocol versions that
// can talk (compared on major.minor, as rafthttp does) and the same cluster.
func (t *HTTP) checkCompatible(h http.Header) error {
	server, err := majorMinor(h.Get(hdrVersion))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrIncompatibleVersion, err)
	}
	minCluster, err := majorMinor(h.Get(hdrMinCluster))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrIncompatibleVersion, err)
	}
	ours, _ := majorMinor(protocolVersion)
	oursMin, _ := majorMinor(minClusterVersion)
	if server < oursMin || minCluster > ours {
		return fmt.Errorf("%w: peer %s (min cluster %s), ours %s (min %s)", ErrIncompatibleVersion,
			h.Get(hdrVersion), h.Get(hdrMinCluster), protocolVersion, minClusterVersion)
	}
	if got := h.Get(hdrClusterID); got != formatID(t.cfg.ClusterID) {
		return fmt.Errorf("%w: peer has %q, ours is %q", ErrClusterIDMismatch, got, formatID(t.cfg.ClusterID))
	}
	return nil
}

// majorMinor parses the major and minor numbers of a semantic version into
// one comparable number. An absent header means etcd 2.0, as in rafthttp.
func majorMinor(v string) (uint64, error) {
	if v == "" {
		v = "2.0.0"
	}
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 3 {
		return 0, fmt.Errorf("malformed version %q", v)
	}
	major, err1 := strconv.ParseUint(parts[0], 10, 32)
	minor, err2 := strconv.ParseUint(parts[1], 10, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("malformed version %q", v)
	}
	return major<<32 | minor, nil
}

// answer412 writes a compatibility failure the way rafthttp reads it: the
// sentinel's text alone is the body.
func answer412(w http.ResponseWriter, err error) {
	body := ErrClusterIDMismatch.Error()
	if errors.Is(err, ErrIncompatibleVersion) {
		body = ErrIncompatibleVersion.Error()
	}
	http.Error(w, body, http.StatusPreconditionFailed)
}
