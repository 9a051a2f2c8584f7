package membership_test

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/raftkv/node/kv/reqid"
	"github.com/raftkv/node/membership"
	"github.com/raftkv/node/messages"
)

// The member list a member starts with: the replicated list over the
// flags, a URL it lacks from the flags, and no removed id back.
func TestAtStart(t *testing.T) {
	for _, c := range []struct {
		name              string
		flags, replicated map[uint64]string
		removed           []uint64
		want              map[uint64]string
	}{
		{"a new member: the flags", map[uint64]string{1: "http://a:1", 2: "http://b:2"}, nil, nil,
			map[uint64]string{1: "http://a:1", 2: "http://b:2"}},
		{"the replicated URL wins", map[uint64]string{1: "http://a:1", 2: "http://b:2"}, map[uint64]string{1: "http://a:1", 2: "http://b:9"}, nil,
			map[uint64]string{1: "http://a:1", 2: "http://b:9"}},
		{"members added since the flags", map[uint64]string{1: "http://a:1"}, map[uint64]string{1: "http://a:1", 4: "http://d:4"}, nil,
			map[uint64]string{1: "http://a:1", 4: "http://d:4"}},
		// raftexample's entries and snapshots name members without URLs.
		{"a URL the replicated list lacks comes from the flags", map[uint64]string{1: "http://a:1", 2: "http://b:2"}, map[uint64]string{1: "", 2: "http://b:9"}, nil,
			map[uint64]string{1: "http://a:1", 2: "http://b:9"}},
		{"nor from the flags: none", map[uint64]string{1: "http://a:1"}, map[uint64]string{1: "", 3: ""}, nil,
			map[uint64]string{1: "http://a:1", 3: ""}},
		{"a removed member does not come back from the flags", map[uint64]string{1: "http://a:1", 2: "http://b:2", 3: "http://c:3"}, map[uint64]string{1: "http://a:1", 2: "http://b:2"}, []uint64{3},
			map[uint64]string{1: "http://a:1", 2: "http://b:2"}},
		{"a member that joined, no flags for the others", map[uint64]string{4: "http://d:4"}, nil, nil,
			map[uint64]string{4: "http://d:4"}},
		{"no flags", nil, map[uint64]string{1: "http://a:1"}, nil, map[uint64]string{1: "http://a:1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			flags := maps.Clone(c.flags)
			if got := membership.AtStart(c.flags, c.replicated, c.removed); !maps.Equal(got, c.want) {
				t.Errorf("AtStart = %v, want %v", got, c.want)
			}
			if !maps.Equal(flags, c.flags) {
				t.Errorf("AtStart changed the flags' map: %v", c.flags)
			}
		})
	}
	for _, c := range []struct{ given, known, want string }{
		{"http://b:9", "http://b:2", "http://b:9"},
		{"", "http://b:2", "http://b:2"},
		{"http://b:9", "", "http://b:9"},
		{"", "", ""},
	} {
		if got := membership.KeepURL(c.given, c.known); got != c.want {
			t.Errorf("KeepURL(%q, %q) = %q, want %q", c.given, c.known, got, c.want)
		}
	}
}

// The changes the replicated list forbids are refused before anything is
// proposed, each with its error (409 to clients).
func TestCheckChanges(t *testing.T) {
	members := map[uint64]string{1: "http://a:1", 2: "http://b:022379", 5: "http://l:5", 7: ""}
	removed := map[uint64]bool{3: true}
	learners := []uint64{5}
	for _, c := range []struct {
		name string
		err  error
		want error // nil: allowed
		says string
	}{
		{"add a new id", membership.CheckAdd(members, removed, 4, "http://d:4", reqid.Shares), nil, ""},
		{"add an id in use", membership.CheckAdd(members, removed, 2, "http://d:4", reqid.Shares), messages.ErrMemberExists, ": 2"},
		{"add a removed id", membership.CheckAdd(members, removed, 3, "http://d:4", reqid.Shares), messages.ErrIDRemoved, ": 3"},
		// 65541 = 1<<16 | 5: its request ids would be member 5's.
		{"add an id whose low 16 bits are a member's", membership.CheckAdd(members, removed, 65541, "http://d:4", reqid.Shares), messages.ErrIDPrefixInUse, "65541 and member 5"},
		{"add a peer URL in use", membership.CheckAdd(members, removed, 4, "http://a:1", reqid.Shares), messages.ErrPeerURLExists, "http://a:1 is member 1's"},
		// A URL --cluster gave an earlier version as written.
		{"add a peer URL in use, spelt otherwise", membership.CheckAdd(members, removed, 4, "http://b:22379", reqid.Shares), messages.ErrPeerURLExists, "member 2's"},
		{"add with the URL of a member that has none", membership.CheckAdd(members, removed, 4, "", reqid.Shares), nil, ""},
		// A member with both faults is told the lowest member's.
		{"two faults: the lower member's", membership.CheckAdd(members, removed, 65541, "http://a:1", reqid.Shares), messages.ErrPeerURLExists, "member 1's"},
		{"no conflict rule", membership.CheckAdd(members, removed, 65541, "http://d:4", nil), nil, ""},

		{"promote a learner", membership.CheckPromote(members, learners, 5), nil, ""},
		{"promote a voter", membership.CheckPromote(members, learners, 1), messages.ErrNotLearner, ": 1"},
		{"promote an unknown member", membership.CheckPromote(members, learners, 9), messages.ErrUnknownMember, ": 9"},
		{"promote a removed member", membership.CheckPromote(members, []uint64{3}, 3), messages.ErrUnknownMember, ""},

		{"remove a member", membership.CheckRemove(members, 2), nil, ""},
		{"remove an unknown member", membership.CheckRemove(members, 9), messages.ErrUnknownMember, ": 9"},
		{"remove a removed member", membership.CheckRemove(members, 3), messages.ErrUnknownMember, ""},
	} {
		if (c.want == nil) != (c.err == nil) || !errors.Is(c.err, c.want) || (c.err != nil && !strings.Contains(c.err.Error(), c.says)) {
			t.Errorf("%s: %v, want %v saying %q", c.name, c.err, c.want, c.says)
		}
	}
}

// The list clients and peers read: sorted, learners marked, client URLs as
// published, this member's own standing in for what it has not published.
func TestList(t *testing.T) {
	peers := map[uint64]string{3: "http://c:3", 1: "http://a:1", 2: "http://b:2", 4: ""}
	clients := map[uint64][]string{1: {"http://a:9"}, 4: {"http://d:9"}}
	got := membership.List(peers, clients, []uint64{2, 7}, 3, []string{"http://c:9"})
	want := []messages.Member{
		{ID: 1, PeerURL: "http://a:1", ClientURLs: []string{"http://a:9"}},
		{ID: 2, PeerURL: "http://b:2", ClientURLs: []string{}, Learner: true},
		{ID: 3, PeerURL: "http://c:3", ClientURLs: []string{"http://c:9"}},
		{ID: 4, PeerURL: "", ClientURLs: []string{"http://d:9"}},
	}
	if !slices.EqualFunc(got, want, sameMember) {
		t.Fatalf("List = %+v, want %+v", got, want)
	}
	// What a member published wins over what it says of itself.
	if got := membership.List(peers, clients, nil, 1, []string{"http://a:8"}); !slices.Equal(got[0].ClientURLs, []string{"http://a:9"}) {
		t.Fatalf("member 1 listed with %v, want what it published", got[0].ClientURLs)
	}
	if got := membership.List(nil, nil, nil, 1, nil); got == nil || len(got) != 0 {
		t.Fatalf("List of no members = %#v, want an empty list", got)
	}
}

func sameMember(a, b messages.Member) bool {
	return a.ID == b.ID && a.PeerURL == b.PeerURL && a.Learner == b.Learner && slices.Equal(a.ClientURLs, b.ClientURLs)
}

// A member that joins checks, in the list a peer gave it, that it was added
// under its id at the peer URL it starts with.
func TestCheckJoined(t *testing.T) {
	members := []messages.Member{
		{ID: 1, PeerURL: "http://a:1", ClientURLs: []string{}},
		{ID: 2, PeerURL: "http://b:2", ClientURLs: []string{"http://b:9"}},
		{ID: 4, PeerURL: "http://d:4", ClientURLs: []string{}},
		{ID: 5, PeerURL: "", ClientURLs: []string{}},
	}
	for _, c := range []struct {
		name    string
		members []messages.Member
		id      uint64
		url     string
		says    string // "": accepted
	}{
		{"added", members, 4, "http://d:4", ""},
		{"added, URL spelt otherwise", members, 4, "http://d:04", ""},
		{"added without a URL (raftexample)", members, 5, "http://e:5", ""},
		{"not added", members, 6, "http://f:6",
			`member 6 is not in cluster abc (its members: 1, 2, 4, 5): add it first, e.g. curl -XPOST -d '{"peer_url":"http://f:6"}' http://b:9/v1/members/6`},
		{"not added, no client URL known", members[:1], 6, "http://f:6", "<client URL>/v1/members/6"},
		{"added at another URL", members, 4, "http://d:5",
			"cluster abc knows member 4 at http://d:4, but --cluster gives it http://d:5: start it with the URL it was added with"},
	} {
		err := membership.CheckJoined(0xabc, c.members, c.id, c.url)
		if (c.says == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.says)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.says)
		}
	}
}
