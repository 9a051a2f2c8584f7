package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
)

// A follower kept down while the others write far past a compaction cannot
// catch up from the leader's log: it must install the leader's snapshot
// (MsgSnap, which the transport sends by POST /raft/snapshot with the
// leader's db streamed after it). The test proves the snapshot path was
// taken from the follower's own log, not only that the data arrived.
func TestFollowerBehindCompactionCatchesUpBySnapshot(t *testing.T) {
	const snapshotCount, catchUp, written = 20, 5, 100
	c := newCluster(t, 3,
		"--snapshot-count", fmt.Sprint(snapshotCount),
		"--catch-up-entries", fmt.Sprint(catchUp))
	lead := c.leader(c.members...)
	f := c.others(lead)[0]

	data := make(map[string]string)
	write := func(key string) {
		data[key] = "value of " + key
		mustWrite(t, lead.base, key, data[key], http.StatusNoContent)
	}
	for i := range 5 {
		write(fmt.Sprintf("/early-%d", i))
	}
	for key, value := range data {
		mustRead(t, f.base, key, value) // f has applied them
	}
	st, err := getStatus(f.base)
	if err != nil {
		t.Fatal(err)
	}
	if st.Applied >= snapshotCount {
		t.Fatalf("%s applied %d entries before going down: it may hold a snapshot of its own", f.name(), st.Applied)
	}

	kill9(t, f.p)
	for i := range written {
		write(fmt.Sprintf("/while-down-%03d", i))
	}
	c.restart(f)
	checkAll(t, data, f)

	// The follower's kv actor says it replaced its state with a snapshot
	// newer than anything it had applied itself...
	var restored float64
	for _, e := range logEntries(f.p.Output(), "restored state from a snapshot") {
		if idx, _ := e["index"].(float64); uint64(idx) > st.Applied {
			restored = idx
		}
	}
	if restored == 0 {
		t.Fatalf("%s caught up without restoring a snapshot newer than its applied index %d", f.name(), st.Applied)
	}
	// ...and the leader's transport says it delivered that snapshot to it.
	sent := slices.ContainsFunc(logEntries(lead.p.Output(), "sent a snapshot"), func(e map[string]any) bool {
		return e["peer"] == float64(f.id) && e["index"] == restored // ids in decimal, as JSON numbers
	})
	if !sent {
		t.Fatalf("%s restored a snapshot at index %v, but %s logged no delivery of it", f.name(), restored, lead.name())
	}
	t.Logf("%s restored the snapshot at index %v that %s sent with its db (it had applied %d)", f.name(), restored, lead.name(), st.Applied)
}
