package e2e

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Two of three members are lost for good: the survivor, restarted with
// --force-new-cluster, runs alone with every write it had applied; two new
// members are added as usual and serve all of them; restarted without the
// flag it stays a member of the three; and a lost member that comes back
// learns it was removed and exits instead of disturbing them.
func TestForceNewCluster(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader(c.members...)
	survivor := c.others(lead)[0]
	const writes = 30
	for i := range writes {
		mustWrite(t, lead.base, fmt.Sprintf("/v1/kv/kept/%02d", i), fmt.Sprintf("value %d", i), http.StatusOK)
	}
	waitApplied(t, appliedIndex(t, lead), survivor)

	lost := c.others(survivor)
	for _, m := range c.members {
		kill9(t, m.p) // waits until it is reaped
	}
	survivor.args = append(survivor.args, "--force-new-cluster")
	c.restart(survivor)
	c.leader(survivor)
	if !strings.Contains(survivor.p.Output(), "restarting as the only voter") {
		t.Fatalf("the forced member did not log that it runs alone:\n%s", survivor.p.Output())
	}
	waitMembers(t, survivor, func(members map[uint64]string) error {
		if ids := slices.Sorted(maps.Keys(members)); !slices.Equal(ids, []uint64{survivor.id}) {
			return fmt.Errorf("members %v, want only %d", ids, survivor.id)
		}
		return nil
	})
	mustWrite(t, survivor.base, "/v1/kv/after-force", "alone", http.StatusOK)

	var added []*member
	for range 2 {
		m := c.newMember()
		body := fmt.Sprintf(`{"peer_url":%q}`, m.peerURL)
		if r := call(http.MethodPost, fmt.Sprintf("%s/v1/members/%d", survivor.base, m.id), body); !r.ok() {
			t.Fatalf("add member %d: %s", m.id, r)
		}
		c.start(m, true)
		c.leader(append(added, survivor, m)...)
		added = append(added, m)
	}
	for _, m := range added {
		for i := range writes {
			mustRead(t, m.base, fmt.Sprintf("/v1/kv/kept/%02d", i), fmt.Sprintf("value %d", i))
		}
		mustRead(t, m.base, "/v1/kv/after-force", "alone")
	}

	// The flag was for one start: without it the survivor is one of three.
	survivor.p.SignalAndWait(t, syscall.SIGTERM, 0, 20*time.Second)
	survivor.args = slices.DeleteFunc(survivor.args, func(a string) bool { return a == "--force-new-cluster" })
	c.restart(survivor)
	now := append([]*member{survivor}, added...)
	c.leader(now...)
	mustWrite(t, added[0].base, "/v1/kv/after-restart", "three", http.StatusOK)
	for _, m := range now {
		mustRead(t, m.base, "/v1/kv/after-restart", "three")
	}

	back := lost[0]
	c.restart(back)
	back.p.WaitExit(t, 0, 30*time.Second)
	if !strings.Contains(back.p.Output(), "removed from the cluster") {
		t.Fatalf("%s exited without saying it was removed:\n%s", back.name(), back.p.Output())
	}
	st, err := getStatus(survivor.base)
	if err != nil || len(st.Members) != 3 {
		t.Fatalf("members after the lost one came back: %+v, %v", st.Members, err)
	}
}
