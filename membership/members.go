package membership

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/raftkv/node/messages"
)

// A member record is a messages.Member (the wire type: id, peer URL, client
// URLs, learner). The replicated state keeps them as maps, id → peer URL
// and id → client URLs, with the ids removed from the cluster; the
// functions below take those maps.

// List is the member list as clients and peers read it (GET /v1/members,
// the peer port's /members): every member of peers, sorted by id, with the
// client URLs it published, flagged a learner if it is one. A member that
// has published none is listed with none ([] in JSON), except self, listed
// with selfURLs (the raftexample format cannot publish them).
func List(peers map[uint64]string, clients map[uint64][]string, learners []uint64, self uint64, selfURLs []string) []messages.Member {
	out := make([]messages.Member, 0, len(peers))
	for _, id := range slices.Sorted(maps.Keys(peers)) {
		m := messages.Member{ID: id, PeerURL: peers[id], ClientURLs: clients[id], Learner: slices.Contains(learners, id)}
		if id == self && len(m.ClientURLs) == 0 {
			m.ClientURLs = selfURLs
		}
		if m.ClientURLs == nil {
			m.ClientURLs = []string{}
		}
		out = append(out, m)
	}
	return out
}

// KeepURL is the peer URL a member has once the log or a snapshot names it
// with given: given, unless it is empty (raftexample's bootstrap entries
// and snapshots carry no URL), in which case the URL known before stays.
func KeepURL(given, known string) string {
	if given != "" {
		return given
	}
	return known
}

// AtStart is the member list (id → peer URL) a member starts with, from
// its flags (--cluster) and the list its state replicated (from the log and
// snapshots, as of the applied index) with the ids it knows were removed.
// The replicated list wins, being the cluster's own and newer than any
// flag, except for a URL it lacks (KeepURL), which the flags give; and no
// member the cluster removed comes back from the flags.
func AtStart(flags, replicated map[uint64]string, removed []uint64) map[uint64]string {
	members := make(map[uint64]string, len(flags)+len(replicated))
	maps.Copy(members, flags)
	for id, u := range replicated {
		members[id] = KeepURL(u, members[id])
	}
	for _, id := range removed {
		delete(members, id)
	}
	return members
}

// CheckAdd refuses, before anything is proposed, adding member id at
// peerURL (a voter or a learner) to a cluster whose replicated state holds
// members (id → peer URL) and removed: an id in use (ErrMemberExists); an
// id once removed, never given out again, as in etcd (ErrIDRemoved); an id
// that conflicts with a member's (ErrIDPrefixInUse); a peer URL a member
// has, which would count one process twice towards a quorum
// (ErrPeerURLExists, URLs compared with SameURL).
func CheckAdd(members map[uint64]string, removed map[uint64]bool, id uint64, peerURL string, conflict IDConflict) error {
	if _, ok := members[id]; ok {
		return fmt.Errorf("%w: %d", messages.ErrMemberExists, id)
	}
	if removed[id] {
		return fmt.Errorf("%w: %d", messages.ErrIDRemoved, id)
	}
	for _, m := range slices.Sorted(maps.Keys(members)) {
		if conflict != nil && conflict(m, id) {
			return fmt.Errorf("%w: %d and member %d", messages.ErrIDPrefixInUse, id, m)
		}
		if u := members[m]; u != "" && SameURL(u, peerURL) {
			return fmt.Errorf("%w: %s is member %d's", messages.ErrPeerURLExists, u, m)
		}
	}
	return nil
}

// CheckPromote refuses promoting id unless it is a member and a learner
// (of learners, the configuration's). Whether it has caught up is the
// leader's to say (LearnerCaughtUp).
func CheckPromote(members map[uint64]string, learners []uint64, id uint64) error {
	if _, ok := members[id]; !ok {
		return fmt.Errorf("%w: %d", messages.ErrUnknownMember, id)
	}
	if !slices.Contains(learners, id) {
		return fmt.Errorf("%w: %d", messages.ErrNotLearner, id)
	}
	return nil
}

// CheckRemove refuses removing an id that is no member.
func CheckRemove(members map[uint64]string, id uint64) error {
	if _, ok := members[id]; !ok {
		return fmt.Errorf("%w: %d", messages.ErrUnknownMember, id)
	}
	return nil
}

// CheckUpdate refuses moving member id to peerURL unless it is a member
// and no other member has that URL (ErrPeerURLExists, as CheckAdd).
func CheckUpdate(members map[uint64]string, id uint64, peerURL string) error {
	if _, ok := members[id]; !ok {
		return fmt.Errorf("%w: %d", messages.ErrUnknownMember, id)
	}
	for _, m := range slices.Sorted(maps.Keys(members)) {
		if u := members[m]; m != id && u != "" && SameURL(u, peerURL) {
			return fmt.Errorf("%w: %s is member %d's", messages.ErrPeerURLExists, u, m)
		}
	}
	return nil
}

// CheckJoined is what a member that joins checks of the member list a peer
// of cluster cid gave it: that it was added, under id, at the peer URL it
// starts with (compared with SameURL). A member nobody added would only
// wait for messages that never come. The refusal says how to add it.
func CheckJoined(cid uint64, members []messages.Member, id uint64, peerURL string) error {
	i := slices.IndexFunc(members, func(m messages.Member) bool { return m.ID == id })
	if i < 0 {
		return fmt.Errorf("member %d is not in cluster %s (its members: %s): add it first, e.g. curl -XPOST -d '{\"peer_url\":\"%s\"}' %s/v1/members/%d",
			id, FormatClusterID(cid), memberIDs(members), peerURL, someClientURL(members), id)
	}
	if got := members[i].PeerURL; got != "" && !SameURL(got, peerURL) {
		return fmt.Errorf("cluster %s knows member %d at %s, but --cluster gives it %s: start it with the URL it was added with", FormatClusterID(cid), id, got, peerURL)
	}
	return nil
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
