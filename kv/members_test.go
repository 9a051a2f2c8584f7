package kv

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/messages"
)

// A learner is added as one, listed as one, and promoted with the URL it
// was added with; the requests the state forbids never reach raft.
func TestActorLearnersAndRefusals(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	const url = "http://l:2380"

	add := f.request(messages.AddMember{ID: 5, PeerURL: url, Learner: true})
	pcc := recv[messages.ProposeConfChange](t, f.raft.got, "ProposeConfChange")
	if c := pcc.Change; c.GetType() != raftpb.ConfChangeAddLearnerNode || c.GetNodeId() != 5 || string(c.GetContext()) != url {
		t.Fatalf("proposed %v, want AddLearnerNode 5 %s", c, url)
	}
	f.wantDelivery(t, f.apply(confChangeEntry(t, 1, &raftpb.ConfChange{
		Type: raftpb.ConfChangeAddLearnerNode.Enum(), NodeId: new(uint64(5)), Context: []byte(url), Id: new(pcc.ID)})))
	recv[messages.ApplyConfChange](t, f.raft.got, "ApplyConfChange")
	if r := add.result(t); r.Err != nil {
		t.Fatalf("AddMember: %v", r.Err)
	}
	want := []messages.Member{{ID: 5, PeerURL: url, ClientURLs: []string{}, Learner: true}}
	if got := f.sync(t).Members; !slices.EqualFunc(got, want, sameMember) {
		t.Fatalf("members %+v, want %+v", got, want)
	}

	// The rules are membership's (membership.CheckAdd and the others,
	// tested there); here, that the actor applies them to its state.
	for _, c := range []struct {
		name string
		msg  any
		want error
	}{
		{"an id in use", messages.AddMember{ID: 5, PeerURL: "http://other:1"}, messages.ErrMemberExists},
		// 65541 = 1<<16 | 5: its request ids would be member 5's.
		{"an id whose low 16 bits are a member's", messages.AddMember{ID: 65541, PeerURL: "http://other:1"}, messages.ErrIDPrefixInUse},
		{"a learner with a peer URL in use", messages.AddMember{ID: 6, PeerURL: url, Learner: true}, messages.ErrPeerURLExists},
		{"promote an unknown member", messages.PromoteMember{ID: 9}, messages.ErrUnknownMember},
		{"remove an unknown member", messages.RemoveMember{ID: 9}, messages.ErrUnknownMember},
	} {
		t.Run(c.name, func(t *testing.T) { f.request(c.msg).wantErr(t, c.want) })
	}
	f.raftQuiet(t)

	promote := f.request(messages.PromoteMember{ID: 5})
	pcc = recv[messages.ProposeConfChange](t, f.raft.got, "ProposeConfChange")
	if c := pcc.Change; c.GetType() != raftpb.ConfChangeAddNode || c.GetNodeId() != 5 || string(c.GetContext()) != url {
		t.Fatalf("proposed %v, want AddNode 5 %s", c, url)
	}
	f.wantDelivery(t, f.apply(confChangeEntry(t, 2, addNode(5, url, pcc.ID))))
	recv[messages.ApplyConfChange](t, f.raft.got, "ApplyConfChange")
	if r := promote.result(t); r.Err != nil {
		t.Fatalf("PromoteMember: %v", r.Err)
	}
	want[0].Learner = false
	if got := f.sync(t).Members; !slices.EqualFunc(got, want, sameMember) {
		t.Fatalf("members %+v after the promotion, want %+v", got, want)
	}
	f.request(messages.PromoteMember{ID: 5}).wantErr(t, messages.ErrNotLearner)
	f.raftQuiet(t)

	// Once removed, its id is never given out again, whatever the URL.
	f.wantDelivery(t, f.apply(confChangeEntry(t, 3, &raftpb.ConfChange{
		Type: raftpb.ConfChangeRemoveNode.Enum(), NodeId: new(uint64(5))})))
	recv[messages.ApplyConfChange](t, f.raft.got, "ApplyConfChange")
	f.request(messages.AddMember{ID: 5, PeerURL: "http://new:2380"}).wantErr(t, messages.ErrIDRemoved)
	f.raftQuiet(t)
}

func sameMember(a, b messages.Member) bool {
	return a.ID == b.ID && a.PeerURL == b.PeerURL && a.Learner == b.Learner && slices.Equal(a.ClientURLs, b.ClientURLs)
}

// A member publishes its client URLs through the log once it is a member,
// and stops once the applied state holds them; every member then lists them.
func TestActorPublishesClientURLs(t *testing.T) {
	urls := []string{"https://a:2379", "http://10.0.0.1:2379"}
	members := map[uint64]string{1: "http://a:2380", 2: "http://b:2380"}
	f := newFixture(t, fixtureOpts{
		snapshot: testState{members: members}.snapshot(t, 3, confState([]uint64{1, 2}, nil)),
		cfg:      func(c *Config) { c.ClientURLs = urls },
	})
	// Nothing before a leader is known: the raft actor may not be running
	// yet, and nothing would commit.
	f.raftQuiet(t)
	f.system.Root.Send(f.pid, messages.LeaderChanged{Leader: 2, Term: 1})
	p := recv[messages.Propose](t, f.raft.got, "the publication of the client URLs")
	c, err := decodeNative(p.Data)
	if err != nil || c.Op != apply.OpAttrs || c.ReqID != p.ID {
		t.Fatalf("proposed %+v (%v), want an opAttrs with the proposal's id", c, err)
	}
	// Member 2's publication, applied ahead of ours, is listed too.
	other := apply.ProposeAttrs(2, []string{"http://b:2379"})
	f.wantDelivery(t, f.apply(normalEntry(4, encodeNative(other)), normalEntry(5, p.Data)))
	got := f.sync(t).Members
	want := []messages.Member{
		{ID: 1, PeerURL: "http://a:2380", ClientURLs: urls},
		{ID: 2, PeerURL: "http://b:2380", ClientURLs: []string{"http://b:2379"}},
	}
	if !slices.EqualFunc(got, want, sameMember) {
		t.Fatalf("members %+v, want %+v", got, want)
	}
	// Applied: nothing more to publish, even after a sweep.
	f.system.Root.Send(f.pid, sweepTick{})
	f.raftQuiet(t)
	// They are in the db, so a follower the db is streamed to lists them.
	f.commitNow(t)
	if follower := f.copyDB(t, 5); !slices.Equal(follower.st.Clients(1), urls) || !slices.Equal(follower.st.Clients(2), []string{"http://b:2379"}) {
		t.Fatalf("client URLs in the db streamed: %q and %q", follower.st.Clients(1), follower.st.Clients(2))
	}
}

// A member that is not (yet) in the applied member list does not publish,
// and the raftexample format, which cannot carry client URLs, never does:
// it lists the member's own.
func TestActorPublishesOnlyWhatItCan(t *testing.T) {
	t.Run("not a member yet", func(t *testing.T) {
		f := newFixture(t, fixtureOpts{cfg: func(c *Config) { c.ClientURLs = []string{"http://a:1"} }})
		f.system.Root.Send(f.pid, messages.LeaderChanged{Leader: 2, Term: 1})
		f.raftQuiet(t)
	})
	t.Run("published once its own addition is applied", func(t *testing.T) {
		f := newFixture(t, fixtureOpts{cfg: func(c *Config) {
			c.ClientURLs = []string{"http://a:1"}
			c.sweepEvery = time.Hour // the publication must not wait for a sweep
		}})
		f.system.Root.Send(f.pid, messages.LeaderChanged{Leader: 2, Term: 1})
		f.raftQuiet(t)
		f.wantDelivery(t, f.apply(confChangeEntry(t, 1, addNode(1, "http://a:2380", 0))))
		recv[messages.ApplyConfChange](t, f.raft.got, "ApplyConfChange")
		p := recv[messages.Propose](t, f.raft.got, "the publication, once member 1 is one")
		if c, err := decodeNative(p.Data); err != nil || c.Op != apply.OpAttrs {
			t.Fatalf("proposed %+v (%v), want an opAttrs", c, err)
		}
	})
	t.Run("raftexample", func(t *testing.T) {
		f := newFixture(t, fixtureOpts{
			snapshot: jsonSnapshot(`{}`, 2, confState([]uint64{1}, nil)),
			cfg: func(c *Config) {
				c.Format = apply.FormatRaftexample
				c.ClientURLs = []string{"http://a:1"}
			},
		})
		f.system.Root.Send(f.pid, messages.LeaderChanged{Leader: 1, Term: 1})
		f.raftQuiet(t)
		if got := f.sync(t).Members; len(got) != 1 || !slices.Equal(got[0].ClientURLs, []string{"http://a:1"}) {
			t.Fatalf("members %+v, want member 1 with its own client URL", got)
		}
	})
}

// A publication of client URLs goes through the native format whole: the
// member's id in decimal as the key, its URLs one per line as the value.
// One whose key is no member id does not decode.
func TestAttrsCommand(t *testing.T) {
	for _, urls := range [][]string{{}, {"http://a:1"}, {"http://a:1", "https://[::1]:2"}} {
		c, err := decodeNative(encodeNative(apply.ProposeAttrs(7, urls)))
		if err != nil {
			t.Fatal(err)
		}
		got := []string{}
		if len(c.Value) > 0 {
			got = strings.Split(string(c.Value), "\n")
		}
		if c.Op != apply.OpAttrs || c.Key != "7" || !slices.Equal(got, urls) {
			t.Fatalf("decoded op %d member %q urls %q, want an opAttrs of 7 %q", c.Op, c.Key, got, urls)
		}
	}
	bad := encodeNative(apply.Command{Op: apply.OpAttrs, Key: "x"})
	if _, err := decodeNative(bad); !errors.Is(err, apply.ErrBadCommand) {
		t.Fatalf("an opAttrs with a bad member id decoded (%v)", err)
	}
}

func TestValidEntry(t *testing.T) {
	a, err := NewActor(wired(t, Config{}))
	if err != nil {
		t.Fatal(err)
	}
	good := encodeNative(apply.Command{Op: apply.OpPut, Key: "k", Value: []byte("v")})
	for _, c := range []struct {
		name string
		data []byte
		ok   bool
	}{
		{"empty", nil, true},
		{"a put", good, true},
		{"a batch", apply.EncodeBatch(1, [][]byte{good, good}, 2*len(good)), true},
		{"unknown op", []byte{9, 1, 0}, false},
		{"a batch with a bad command", apply.EncodeBatch(1, [][]byte{good, {9}}, len(good)+1), false},
	} {
		if err := a.ValidEntry(c.data); (err == nil) != c.ok {
			t.Errorf("%s: ValidEntry = %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

// A conf change the raft actor declines (it does not fit the configuration)
// changes no member list, and its proposer hears why; the entry still
// counts as applied.
func TestActorDeclinedConfChange(t *testing.T) {
	f := newFixture(t, fixtureOpts{declineConfChange: true})
	add := f.request(messages.AddMember{ID: 4, PeerURL: "http://d:2380"})
	pcc := recv[messages.ProposeConfChange](t, f.raft.got, "ProposeConfChange")
	d := f.wantDelivery(t, f.apply(confChangeEntry(t, 1, addNode(4, "http://d:2380", pcc.ID))))
	if len(d.members) != 0 || d.applied != 1 {
		t.Fatalf("after a declined change: members %v at %d, want none at 1", d.members, d.applied)
	}
	add.wantErr(t, messages.ErrConfChangeDeclined)
}
