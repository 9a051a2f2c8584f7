package e2e

import (
	"fmt"
	"net/http"
	"testing"
)

// A write acknowledged by any member is read through every other member,
// and the raftexample route and the /v1/kv route name the same key.
func TestWritesThroughEveryMemberReadThroughEveryOther(t *testing.T) {
	c := newCluster(t, 3)
	routes := []struct {
		name      string
		writePath string // %s is the key
		wantCode  int
		readPath  string // the other route family
	}{
		{"raftexample route", "/%s", http.StatusNoContent, "/v1/kv/%s"},
		{"v1 route", "/v1/kv/%s", http.StatusOK, "/%s"},
	}
	for _, w := range c.members {
		for _, rt := range routes {
			t.Run(fmt.Sprintf("%s via %s", rt.name, w.name()), func(t *testing.T) {
				key := fmt.Sprintf("key-%d-%d", w.id, rt.wantCode)
				value := fmt.Sprintf("written through %s on the %s", w.name(), rt.name)
				mustWrite(t, w.base, fmt.Sprintf(rt.writePath, key), value, rt.wantCode)
				for _, r := range c.others(w) {
					mustRead(t, r.base, fmt.Sprintf(rt.readPath, key), value)
				}
			})
		}
	}

	// Every member knows every member, at the URL it was given.
	for _, m := range c.members {
		st, err := getStatus(m.base)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Members) != len(c.members) {
			t.Errorf("%s knows members %v, want %d", m.name(), st.Members, len(c.members))
		}
		for _, o := range c.members {
			if st.Members[o.id] != o.peerURL {
				t.Errorf("%s has %q for member %d, want %q", m.name(), st.Members[o.id], o.id, o.peerURL)
			}
		}
	}
}
