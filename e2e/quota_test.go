package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// A write that would take the data past --quota-backend-bytes is refused
// with 507 through any member, decided where the entry is applied, so every
// member holds the same state; reads and deletes go on, and once deletes
// free room, writes go through again by themselves.
func TestQuotaRefusesWritesAlikeOnEveryMember(t *testing.T) {
	const quota = 1 << 20
	c := newCluster(t, 3, "--quota-backend-bytes", fmt.Sprint(quota))
	lead := c.leader(c.members...)
	value := strings.Repeat("q", 64<<10)

	var written []string
	for i := 0; ; i++ {
		key := fmt.Sprintf("/v1/kv/q-%03d", i)
		via := c.members[i%3]
		r := call(http.MethodPut, via.base+key, value)
		if r.code == http.StatusInsufficientStorage {
			if !strings.Contains(r.body, "quota") {
				t.Fatalf("507 without a reason: %s", r)
			}
			t.Logf("write %d through %s refused: %s", i, via.name(), r)
			break
		}
		if r.code != http.StatusOK {
			t.Fatalf("PUT %s through %s: %s", key, via.name(), r)
		}
		written = append(written, key)
		if i > 2*quota/len(value) {
			t.Fatalf("%d writes of %d bytes accepted under a quota of %d", i, len(value), quota)
		}
	}
	for _, m := range c.members {
		if r := call(http.MethodPut, m.base+"/v1/kv/one-more", value); r.code != http.StatusInsufficientStorage {
			t.Errorf("a write through %s over the quota: %s, want 507", m.name(), r)
		}
		mustRead(t, m.base, written[0], value)
	}
	// Deletes go through and free room.
	for _, key := range written[:4] {
		if r := call(http.MethodDelete, lead.base+key, ""); r.code != http.StatusOK {
			t.Fatalf("DELETE %s over the quota: %s", key, r)
		}
	}
	mustWrite(t, c.members[1].base, "/v1/kv/after-delete", value, http.StatusOK)

	// Every member decided alike: same applied state.
	waitEqualDigests(t, c.members...)
}
