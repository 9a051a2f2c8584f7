package cluster

import (
	"encoding/binary"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/raftkv/node/actors"
	"github.com/raftkv/node/messages"
	"github.com/raftkv/node/metrics"
)

// rawPut is a put as the native format spells it (op 1, request id, key
// length, key, value), written by hand as an older binary or a bug would,
// past every check of the API and the kv actor.
func rawPut(reqID uint64, key, value string) []byte {
	b := []byte{1}
	b = binary.AppendUvarint(b, reqID)
	b = binary.AppendUvarint(b, uint64(len(key)))
	return append(append(b, key...), value...)
}

// Entries that reach the log past the API's checks (a key bbolt refuses,
// bytes that decode as no command) are refused alike by every member when
// applied: none stops, the digests stay equal, and writes go on.
func TestEveryMemberRefusesEntriesPastTheChecks(t *testing.T) {
	refused := make(map[uint64]*metrics.Node)
	c := newCluster(t, 3, func(cfg *actors.NodeConfig) {
		cfg.Metrics = metrics.New(nil)
		refused[cfg.ID] = cfg.Metrics
	})
	lead := c.leader()
	c.put(lead, "a", "1")
	huge := strings.Repeat("k", 40000) // bbolt refuses keys over 32,768 bytes
	// Through the leader, whose raft appends it as is; through a follower,
	// whose raft forwards it to the leader's guard, which lets it pass:
	// it decodes.
	for _, p := range []struct {
		via  uint64
		data []byte
	}{
		{lead, rawPut(1<<60, huge, "v")},
		{lead, []byte{0xff, 0x01}},
		{c.follower(), rawPut(1<<60+1, huge, "v")},
	} {
		node := c.Member(p.via).Node
		node.Root().Send(node.Raft(), messages.Propose{ID: 1 << 61, Data: p.data})
	}
	for _, id := range []uint64{1, 2, 3} {
		c.put(id, "b", "after")
	}
	c.converged()
	for _, m := range c.Running() {
		id := m.ID
		if err := m.Stopped(); err != nil {
			t.Fatalf("member %d stopped: %v", id, err)
		}
		c.expect(id, "a", "1", false)
		if r := c.do(id, http.MethodGet, "/v1/digest", ""); !strings.Contains(r.Body, `"keys":2`) {
			t.Errorf("member %d: digest %s, want the 2 keys written through the API", id, r.Body)
		}
		if n := testutil.ToFloat64(refused[id].RefusedEntries); n != 3 {
			t.Errorf("member %d refused %v entries, want 3", id, n)
		}
	}
}
