package httpapi_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/raftkv/node/httpapi"
	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/messages"
)

func TestMemberRoutes(t *testing.T) {
	ok := messages.Result{Index: 9}
	short := httpapi.HandlerConfig{Timeout: 50 * time.Millisecond}
	runCases(t, []apiCase{
		{name: "add a voter", method: "POST", path: "/v1/members/4", body: ptr(`{"peer_url":"http://h:4"}`), kvReply: ok,
			wantStatus: 201, wantBody: ptr(`{"id":4,"peer_url":"http://h:4","client_urls":[],"learner":false}` + "\n"),
			wantHeader: map[string]string{"Content-Type": "application/json"},
			wantKV:     msgs(messages.AddMember{ID: 4, PeerURL: "http://h:4"})},
		{name: "add a learner", method: "POST", path: "/v1/members/4", body: ptr(`{"peer_url":"https://h:4/","learner":true}`), kvReply: ok,
			wantStatus: 201, wantContains: `"learner":true`,
			wantKV: msgs(messages.AddMember{ID: 4, PeerURL: "https://h:4", Learner: true})},
		{name: "add without a body", method: "POST", path: "/v1/members/4", kvReply: ok, wantStatus: 400, wantContains: "peer_url"},
		{name: "add with an unknown field", method: "POST", path: "/v1/members/4", body: ptr(`{"peer_url":"http://h:4","voter":true}`),
			kvReply: ok, wantStatus: 400},
		{name: "add with a path in the URL", method: "POST", path: "/v1/members/4", body: ptr(`{"peer_url":"http://h:4/raft"}`),
			kvReply: ok, wantStatus: 400, wantContains: "no path"},
		{name: "add without a port", method: "POST", path: "/v1/members/4", body: ptr(`{"peer_url":"http://h"}`),
			kvReply: ok, wantStatus: 400},
		{name: "add an id raft reserves", method: "POST", path: "/v1/members/18446744073709551615", body: ptr(`{"peer_url":"http://h:4"}`),
			kvReply: ok, wantStatus: 400, wantContains: "reserved"},
		{name: "add an id in use", method: "POST", path: "/v1/members/4", body: ptr(`{"peer_url":"http://h:4"}`),
			kvReply: messages.Result{Err: messages.ErrMemberExists}, wantStatus: 409,
			wantKV: msgs(messages.AddMember{ID: 4, PeerURL: "http://h:4"})},
		{name: "add refused by the strict check", method: "POST", path: "/v1/members/4", body: ptr(`{"peer_url":"http://h:4"}`),
			kvReply: messages.Result{Err: messages.ErrNotEnoughStarted}, wantStatus: 409, wantContains: "quorum",
			wantKV: msgs(messages.AddMember{ID: 4, PeerURL: "http://h:4"})},
		{name: "remove", method: "DELETE", path: "/v1/members/4", kvReply: ok, wantStatus: 204, wantBody: ptr(""),
			wantKV: msgs(messages.RemoveMember{ID: 4})},
		{name: "remove unknown", method: "DELETE", path: "/v1/members/4", kvReply: messages.Result{Err: messages.ErrUnknownMember},
			wantStatus: 404, wantKV: msgs(messages.RemoveMember{ID: 4})},
		{name: "GET one member is not a route", method: "GET", path: "/v1/members/4", wantStatus: 405,
			wantHeader: map[string]string{"Allow": "POST, DELETE"}},
		{name: "promote not GET", method: "GET", path: "/v1/members/4/promote", wantStatus: 405,
			wantHeader: map[string]string{"Allow": "POST"}},
		{name: "an unknown action", method: "POST", path: "/v1/members/4/demote", wantStatus: 404},
		{name: "promote a voter, asked of the leader", method: "POST", path: "/v1/members/4/promote",
			kvReply: messages.Result{Err: messages.ErrNotLearner}, raftReply: messages.Status{ID: 1, Leader: 1},
			wantStatus: 409, wantContains: "not a learner",
			wantKV: msgs(messages.PromoteMember{ID: 4}), wantRaft: msgs(messages.StatusRequest{})},
		{name: "promote a learner behind", method: "POST", path: "/v1/members/4/promote",
			kvReply: messages.Result{Err: messages.ErrLearnerNotReady}, wantStatus: 409, wantContains: "caught up",
			wantKV: msgs(messages.PromoteMember{ID: 4})},
		{name: "promote on a follower with no way to the leader", method: "POST", path: "/v1/members/4/promote",
			kvReply: messages.Result{Err: messages.ErrNotLeader}, wantStatus: 503, wantContains: "leader",
			wantKV: msgs(messages.PromoteMember{ID: 4})},
		{name: "move leadership", method: "POST", path: "/v1/leader", body: ptr(`{"id":3}`),
			raftReply: messages.LeadershipTransferred{Leader: 3}, wantStatus: 200, wantBody: ptr(`{"leader":3}` + "\n"),
			wantRaft: msgs(messages.TransferLeadership{To: 3})},
		{name: "move leadership to a learner", method: "POST", path: "/v1/leader", body: ptr(`{"id":3}`),
			raftReply: messages.LeadershipTransferred{Leader: 1, Err: messages.ErrIsLearner}, wantStatus: 409,
			wantRaft: msgs(messages.TransferLeadership{To: 3})},
		{name: "move leadership that does not move", method: "POST", path: "/v1/leader", body: ptr(`{"id":3}`),
			raftReply: messages.LeadershipTransferred{Leader: 1, Err: messages.ErrTransferFailed}, wantStatus: 504,
			wantRaft: msgs(messages.TransferLeadership{To: 3})},
		{name: "move leadership to an unknown member", method: "POST", path: "/v1/leader", body: ptr(`{"id":3}`),
			raftReply: messages.LeadershipTransferred{Err: messages.ErrUnknownMember}, wantStatus: 404,
			wantRaft: msgs(messages.TransferLeadership{To: 3})},
		{name: "move leadership, raft silent", method: "POST", path: "/v1/leader", body: ptr(`{"id":3}`),
			raftReply: silent, cfg: short, wantStatus: 504, wantRaft: msgs(messages.TransferLeadership{To: 3})},
		{name: "move leadership without an id", method: "POST", path: "/v1/leader", body: ptr(`{}`), wantStatus: 400},
		{name: "leader not GET", method: "GET", path: "/v1/leader", wantStatus: 405, wantHeader: map[string]string{"Allow": "POST"}},
	})
}

// scriptedActor answers each message by its type.
func scriptedActor(system *actor.ActorSystem, answer func(msg any) any) *actor.PID {
	return system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch ctx.Message().(type) {
		case *actor.Started, *actor.Stopping, *actor.Stopped, *actor.Restarting:
			return
		}
		if a := answer(ctx.Message()); a != nil {
			ctx.Respond(a)
		}
	}))
}

func quietSystem(t *testing.T) *actor.ActorSystem {
	system := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }),
		actor.WithDeadLetterThrottleInterval(10*time.Millisecond))
	t.Cleanup(system.Shutdown)
	return system
}

// A follower hands a promotion to the leader's peer API and relays its
// answer; the leader's peer API refuses a request for another cluster.
func TestPromoteHandedToTheLeader(t *testing.T) {
	verifyNoLeaks(t)
	system := quietSystem(t)
	member := messages.Member{ID: 4, PeerURL: "http://l:4", ClientURLs: []string{}}
	leaderReply := messages.Result{}
	leaderKV := scriptedActor(system, func(msg any) any {
		if _, ok := msg.(messages.PromoteMember); ok {
			return leaderReply
		}
		return messages.Result{Members: []messages.Member{member}}
	})
	leader := httptest.NewServer(httpapi.NewPeerHandler(httpapi.PeerHandlerConfig{Root: system.Root, KV: leaderKV, ClusterID: 0xabc, Logger: zap.NewNop()}))
	defer leader.Close()

	followerKV := scriptedActor(system, func(msg any) any {
		if _, ok := msg.(messages.PromoteMember); ok {
			return messages.Result{Err: messages.ErrNotLeader}
		}
		return messages.Result{Members: []messages.Member{member}}
	})
	raftActor := scriptedActor(system, func(any) any {
		return messages.Status{ID: 1, Leader: 2, Members: map[uint64]string{1: "http://f:1", 2: leader.URL}}
	})
	follower := httptest.NewServer(httpapi.NewHandler(httpapi.HandlerConfig{Root: system.Root, KV: followerKV, Raft: raftActor,
		PeerClient: leader.Client(), ClusterID: 0xabc}))
	defer follower.Close()

	post := func() (int, string) {
		resp, err := follower.Client().Post(follower.URL+"/v1/members/4/promote", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post(); code != 200 || !strings.Contains(body, `"id":4`) {
		t.Fatalf("promote through a follower: %d %q, want 200 with the member", code, body)
	}
	leaderReply = messages.Result{Err: messages.ErrLearnerNotReady}
	if code, body := post(); code != 409 || !strings.Contains(body, "caught up") {
		t.Fatalf("promote of a learner behind, through a follower: %d %q, want the leader's 409", code, body)
	}

	// The leader's peer API: another cluster's request is refused.
	req, _ := http.NewRequest(http.MethodPost, leader.URL+"/members/promote/4", nil)
	req.Header.Set("X-Etcd-Cluster-ID", "def")
	resp, err := leader.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPreconditionFailed {
		t.Fatalf("promote from another cluster: %d, want 412", resp.StatusCode)
	}
	follower.Client().CloseIdleConnections()
	leader.Client().CloseIdleConnections()
}

// GET /members on the peer port tells a joining member its cluster and
// whether it was added.
func TestPeerMembers(t *testing.T) {
	verifyNoLeaks(t)
	system := quietSystem(t)
	ms := []messages.Member{{ID: 1, PeerURL: "http://a:1", ClientURLs: []string{"http://a:2"}}}
	kvActor := scriptedActor(system, func(any) any { return messages.Result{Members: ms} })
	srv := httptest.NewServer(httpapi.NewPeerHandler(httpapi.PeerHandlerConfig{Root: system.Root, KV: kvActor, ClusterID: 0x5eed, Format: apply.FormatRaftexample}))
	defer srv.Close()
	defer srv.Client().CloseIdleConnections()

	pc, err := httpapi.FetchPeerMembers(t.Context(), srv.Client(), srv.URL)
	if err != nil || pc.ID != 0x5eed || pc.Format != apply.FormatRaftexample || len(pc.Members) != 1 || pc.Members[0].PeerURL != "http://a:1" {
		t.Fatalf("FetchPeerMembers = %+v %v", pc, err)
	}
	resp, err := srv.Client().Get(srv.URL + "/members")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var pm httpapi.PeerMembers
	if err := json.NewDecoder(resp.Body).Decode(&pm); err != nil || resp.Header.Get("X-Etcd-Cluster-ID") != "5eed" || pm.ClusterID != "5eed" {
		t.Fatalf("GET /members: header %q, body %+v (%v)", resp.Header.Get("X-Etcd-Cluster-ID"), pm, err)
	}
	if _, err := httpapi.FetchPeerMembers(t.Context(), srv.Client(), srv.URL+"/nowhere"); err == nil {
		t.Fatal("FetchPeerMembers of a 404 succeeded")
	}
}
