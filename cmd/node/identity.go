package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/server/v3/storage/wal"

	"github.com/raftkv/node/httpapi"
	"github.com/raftkv/node/kv"
	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/membership"
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
	case o.format == apply.FormatRaftexample:
		return membership.RaftexampleClusterID, nil
	case o.join && wal.Exist(persistence.WALDir(o.dataDir)):
		return 0, nil
	case o.join:
		return learnClusterID(o, peerClient)
	}
	return membership.ClusterID(o.peers, o.token), nil
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
		if pc.Format != o.format {
			return 0, fmt.Errorf("cluster %s keeps its state in the %s format, this member in %s: start it with --format %s",
				membership.FormatClusterID(pc.ID), pc.Format, o.format, pc.Format)
		}
		if err := membership.CheckJoined(pc.ID, pc.Members, o.id, self); err != nil {
			return 0, err
		}
		return pc.ID, nil
	}
	return 0, fmt.Errorf("could not learn which cluster to join: no other member in --cluster answered (%s)", strings.Join(errs, "; "))
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
	case errors.As(err, &mm):
		// The refusal is membership's: what the data dir holds, what the
		// flags describe, what to do.
		stored, want := origin(mm.Stored), origin(mm.Want)
		want.Cluster, want.Token = membership.FormatCluster(o.peers), o.token
		return (&membership.MismatchError{DataDir: o.dataDir, Stored: stored, Want: want}).Error()
	}
	return err.Error()
}

// origin is what a data dir's WAL records of its member, as membership
// describes it.
func origin(m persistence.Metadata) membership.Origin {
	return membership.Origin{Member: m.NodeID, ClusterID: m.ClusterID, Cluster: m.InitialCluster, Token: m.Token, Joined: m.Joined}
}
