package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/node/internal/testutil"
)

// memberInfo is one member of GET /v1/members, decoded here to pin the
// wire format.
type memberInfo struct {
	ID         uint64   `json:"id"`
	PeerURL    string   `json:"peer_url"`
	ClientURLs []string `json:"client_urls"`
	Learner    bool     `json:"learner"`
}

func getMembers(t *testing.T, base string) []memberInfo {
	t.Helper()
	r := call(http.MethodGet, base+"/v1/members", "")
	if r.code != http.StatusOK {
		t.Fatalf("GET %s/v1/members: %s", base, r)
	}
	var body struct {
		Members []memberInfo `json:"members"`
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		t.Fatalf("GET %s/v1/members: %v in %q", base, err, r.body)
	}
	return body.Members
}

// A learner joins, receives the log, is refused promotion until it has
// caught up, and is then promoted through a follower (which hands the
// request to the leader). Every member lists every other's client URLs.
func TestLearnerJoinsAndIsPromoted(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader(c.members...)
	for i := range 50 {
		mustWrite(t, c.members[i%3].base, fmt.Sprintf("/before-%d", i), "v", http.StatusNoContent)
	}
	m4 := c.newMember()
	body := fmt.Sprintf(`{"peer_url":%q,"learner":true}`, m4.peerURL)
	if r := call(http.MethodPost, fmt.Sprintf("%s/v1/members/%d", lead.base, m4.id), body); r.code != http.StatusCreated {
		t.Fatalf("POST /v1/members/%d: %s, want 201", m4.id, r)
	}
	// Not started: its log is empty, far behind the leader's.
	via := c.others(lead)[0]
	promote := fmt.Sprintf("%s/v1/members/%d/promote", via.base, m4.id)
	if r := call(http.MethodPost, promote, ""); r.code != http.StatusConflict || !strings.Contains(r.body, "caught up") {
		t.Fatalf("promoting a learner that never started: %s, want 409 not caught up", r)
	}
	c.start(m4, true)
	mustRead(t, m4.base, "/before-49", "v")
	testutil.Eventually(t, 20*time.Second, "promote the learner", func() error {
		r := call(http.MethodPost, promote, "")
		if r.code == http.StatusConflict && strings.Contains(r.body, "caught up") {
			return errors.New(r.String()) // still catching up
		}
		if r.code != http.StatusOK || !strings.Contains(r.body, `"learner":false`) {
			t.Fatalf("promote: %s, want 200 and a voter", r)
		}
		return nil
	})
	if r := call(http.MethodPost, promote, ""); r.code != http.StatusConflict || !strings.Contains(r.body, "not a learner") {
		t.Fatalf("promoting a voter: %s, want 409", r)
	}
	testutil.Eventually(t, 20*time.Second, "every member lists every client URL", func() error {
		for _, m := range c.members {
			got := getMembers(t, m.base)
			for _, want := range c.members {
				i := slices.IndexFunc(got, func(g memberInfo) bool { return g.ID == want.id })
				if i < 0 || got[i].Learner || !slices.Equal(got[i].ClientURLs, []string{want.base}) || got[i].PeerURL != want.peerURL {
					return fmt.Errorf("%s lists %+v", m.name(), got)
				}
			}
		}
		return nil
	})
	mustWrite(t, m4.base, "/after-promotion", "v", http.StatusNoContent)
}

// Membership changes that cannot be right are refused with 409 and a
// reason, and nothing is proposed: a second id for one peer URL, and,
// with one of three members down, a change that would leave the cluster
// without a quorum of running members (etcd's strict reconfiguration
// check).
func TestMembershipRefusals(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader(c.members...)
	follower := c.others(lead)
	for _, r := range []struct {
		name, method, path, body string
		want                     string
	}{
		{"a peer URL in use (raftexample's route)", http.MethodPost, "/5", lead.peerURL, "peer URL already belongs"},
		{"a peer URL in use", http.MethodPost, "/v1/members/5", fmt.Sprintf(`{"peer_url":%q}`, follower[0].peerURL), "peer URL already belongs"},
		{"an id in use", http.MethodPost, fmt.Sprintf("/v1/members/%d", follower[0].id), `{"peer_url":"http://127.0.0.1:1"}`, "already exists"},
	} {
		if got := call(r.method, lead.base+r.path, r.body); got.code != http.StatusConflict || !strings.Contains(got.body, r.want) {
			t.Errorf("%s: %s, want 409 %q", r.name, got, r.want)
		}
	}

	down := follower[1]
	kill9(t, down.p)
	up := c.others(down)
	c.leader(up...)
	ports := testutil.FreePorts(t, 1)
	newPeer := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	testutil.Eventually(t, 20*time.Second, "the strict check to see the member down", func() error {
		r := call(http.MethodPost, up[0].base+"/v1/members/5", fmt.Sprintf(`{"peer_url":%q}`, newPeer))
		if r.code == http.StatusCreated {
			t.Fatalf("a fourth voter was added with one of three members down: 2 of 4 up is no quorum")
		}
		if r.code == http.StatusConflict && strings.Contains(r.body, "not enough started members") {
			return nil
		}
		return errors.New(r.String())
	})
	if r := call(http.MethodDelete, fmt.Sprintf("%s/v1/members/%d", up[0].base, up[1].id), ""); r.code != http.StatusConflict ||
		!strings.Contains(r.body, "not enough started members") {
		t.Errorf("removing a running voter with another down: %s, want 409", r)
	}
	// A learner counts for no quorum, and the member that is down may go.
	if r := call(http.MethodPost, up[0].base+"/v1/members/5", fmt.Sprintf(`{"peer_url":%q,"learner":true}`, newPeer)); r.code != http.StatusCreated {
		t.Errorf("adding a learner with a member down: %s, want 201", r)
	}
	if r := call(http.MethodDelete, fmt.Sprintf("%s/v1/members/%d", up[1].base, down.id), ""); r.code != http.StatusNoContent {
		t.Errorf("removing the member that is down: %s, want 204", r)
	}
	// /v1/members is each member's applied state, and the raft actor's
	// applied index (/v1/status) may run ahead of the state machine's: a
	// member lists the removal once its kv actor applied it, so poll each
	// until it does; one that never does fails at the deadline.
	want := sortedIDs(lead.id, follower[0].id, 5)
	for _, m := range up {
		testutil.Eventually(t, 20*time.Second, m.name()+" to list the members after the removal", func() error {
			if ids := memberIDs(getMembers(t, m.base)); !slices.Equal(ids, want) {
				return fmt.Errorf("%s lists members %v, want %v", m.name(), ids, want)
			}
			return nil
		})
	}
}

func memberIDs(ms []memberInfo) []uint64 {
	var ids []uint64
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	return ids
}

func sortedIDs(ids ...uint64) []uint64 { return slices.Sorted(slices.Values(ids)) }

// A member started with --join that nobody added refuses to start, saying
// how to add it; so does one whose peer URL is not the one it was added with.
func TestJoinRefusedUntilAdded(t *testing.T) {
	c := newCluster(t, 3)
	m4 := c.newMember()
	c.start(m4, true)
	m4.p.WaitExit(t, 1, 20*time.Second)
	if out := m4.p.Output(); !strings.Contains(out, "member 4 is not in cluster") || !strings.Contains(out, "/v1/members/4") {
		t.Fatalf("the refusal does not say to add the member first:\n%s", testutil.Tail(out, 5))
	}
	other := fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePorts(t, 1)[0])
	if r := call(http.MethodPost, c.members[0].base+"/v1/members/4", fmt.Sprintf(`{"peer_url":%q}`, other)); r.code != http.StatusCreated {
		t.Fatalf("POST /v1/members/4: %s", r)
	}
	c.start(m4, true)
	m4.p.WaitExit(t, 1, 20*time.Second)
	if out := m4.p.Output(); !strings.Contains(out, "knows member 4 at "+other) {
		t.Fatalf("the refusal does not name the URL member 4 was added with:\n%s", testutil.Tail(out, 5))
	}
}
