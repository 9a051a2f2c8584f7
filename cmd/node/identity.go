package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/server/v3/storage/wal"

	"github.com/raftkv/node/actors"
	"github.com/raftkv/node/httpapi"
	"github.com/raftkv/node/kv"
	"github.com/raftkv/node/messages"
	"github.com/raftkv/node/persistence"
)

// learnTimeout bounds the question to each peer when joining: a member that
// takes longer to answer is as good as down, and the next one is asked.
const learnTimeout = 3 * time.Second

// clusterID decides which cluster this member belongs to:
//
//   - --cluster-id when given (and 1000 for the raftexample format);
//   - for a member that joins with a new data dir, the id its peers
//     report, once they confirm it was added with its peer URL;
//   - for a member that joined before, the id its data dir recorded (0
//     here: persistence.Open takes it from the WAL);
//   - otherwise the id derived from --cluster and --initial-cluster-token,
//     which the data dir, if it exists, must also hold.
func clusterID(o options, peerClient *http.Client) (uint64, error) {
	switch {
	case o.clusterID != 0:
		return o.clusterID, nil
	case o.format == kv.FormatRaftexample:
		return raftexampleClusterID, nil
	case o.join && wal.Exist(persistence.WALDir(o.dataDir)):
		return 0, nil
	case o.join:
		return learnClusterID(o, peerClient)
	}
	return actors.ClusterIDOf(o.peers, o.token), nil
}

// learnClusterID asks the other members in --cluster, one after another,
// for the cluster's id and members, and checks that this member was added
// at its peer URL: starting a member nobody added would only have it wait
// for messages that never come.
func learnClusterID(o options, client *http.Client) (uint64, error) {
	self := o.peers[o.id]
	var errs []string
	for _, id := range slices.Sorted(maps.Keys(o.peers)) {
		if id == o.id {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), learnTimeout)
		pc, err := httpapi.FetchPeerMembers(ctx, client, o.peers[id])
		cancel()
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		cid, members := pc.ID, pc.Members
		if pc.Format != o.format {
			return 0, fmt.Errorf("cluster %x keeps its state in the %s format, this member in %s: start it with --format %s", cid, pc.Format, o.format, pc.Format)
		}
		i := slices.IndexFunc(members, func(m messages.Member) bool { return m.ID == o.id })
		if i < 0 {
			return 0, fmt.Errorf("member %d is not in cluster %x (its members: %s): add it first, e.g. curl -XPOST -d '{\"peer_url\":\"%s\"}' %s/v1/members/%d",
				o.id, cid, memberIDs(members), self, someClientURL(members), o.id)
		}
		if got := members[i].PeerURL; got != "" && got != self {
			return 0, fmt.Errorf("cluster %x knows member %d at %s, but --cluster gives it %s: start it with the URL it was added with", cid, o.id, got, self)
		}
		return cid, nil
	}
	return 0, fmt.Errorf("could not learn which cluster to join: no other member in --cluster answered (%s)", strings.Join(errs, "; "))
}

func memberIDs(ms []messages.Member) string {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = strconv.FormatUint(m.ID, 10)
	}
	return strings.Join(ids, ", ")
}

func someClientURL(ms []messages.Member) string {
	for _, m := range ms {
		if len(m.ClientURLs) > 0 {
			return m.ClientURLs[0]
		}
	}
	return "<client URL>"
}

// refusal turns an error of the member's start into the one line the
// operator reads: what is wrong, with what, and what to do. Errors it does
// not know are given as they are.
func refusal(o options, err error) string {
	var mm *persistence.MismatchError
	switch {
	case errors.Is(err, kv.ErrStateLost):
		return fmt.Sprintf("%v: remove member %d from the cluster (DELETE /v1/members/%d through another member) and add it under a new id (a removed id is never reused) with an empty data dir", err, o.id, o.id)
	case errors.Is(err, persistence.ErrDataDirLocked):
		return fmt.Sprintf("data dir %s is in use by another process: stop that member first, or give this one its own --data-dir", o.dataDir)
	case errors.As(err, &mm) && errors.Is(err, persistence.ErrNodeIDMismatch):
		return fmt.Sprintf("data dir %s holds member %d of cluster %x, not member %d: give each member its own --data-dir", o.dataDir, mm.Stored.NodeID, mm.Stored.ClusterID, o.id)
	case errors.As(err, &mm):
		return fmt.Sprintf("data dir %s holds member %d of another cluster (%s), but the flags describe cluster %x (--cluster %s%s): %s",
			o.dataDir, mm.Stored.NodeID, describeStored(mm.Stored), mm.Want.ClusterID, actors.ClusterFlag(o.peers), tokenFlag(o.token), advice(o, mm.Stored))
	}
	return err.Error()
}

// describeStored says what a data dir's WAL records of its cluster.
func describeStored(m persistence.Metadata) string {
	switch {
	case m.Joined:
		return fmt.Sprintf("cluster %x, which it joined", m.ClusterID)
	case m.InitialCluster != "":
		return fmt.Sprintf("cluster %x, created with --cluster %s%s", m.ClusterID, m.InitialCluster, tokenFlag(m.Token))
	}
	return fmt.Sprintf("cluster %x, created by an earlier version", m.ClusterID)
}

func advice(o options, m persistence.Metadata) string {
	switch {
	case m.Joined:
		return "restart it with --join, or move the data dir away to start a new member"
	case m.InitialCluster != "":
		return "restart it with the flags it was created with, or move the data dir away (or pick another --data-dir) to start a new member"
	}
	return fmt.Sprintf("to keep using it, start it with --cluster-id %x; or move the data dir away to start a new member", m.ClusterID)
}

func tokenFlag(token string) string {
	if token == "" {
		return ""
	}
	return " --initial-cluster-token " + token
}
