package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The README's lock, step by step and through different members: take it
// (a create), see a second taker refused, wait for it with a watch from the
// revision seen, release it only with the revision that took it, and take
// it again once the watch reports the delete.
func TestREADMELock(t *testing.T) {
	c := newCluster(t, 3)
	a, b := c.members[0].base, c.members[1].base
	lock := "/v1/kv/locks/backup"

	r := callWith(http.MethodPut, a+lock, "host-a", map[string]string{"If-None-Match": "*"})
	if r.code != http.StatusOK {
		t.Fatalf("take the lock: %s", r)
	}
	var took struct{ Revision uint64 }
	if err := json.Unmarshal([]byte(r.body), &took); err != nil || took.Revision == 0 {
		t.Fatalf("take the lock: %s (%v)", r, err)
	}
	if r := callWith(http.MethodPut, b+lock, "host-b", map[string]string{"If-None-Match": "*"}); r.code != http.StatusPreconditionFailed {
		t.Fatalf("a second taker: %s, want 412", r)
	}

	// host-b waits: a watch from the revision after the one it saw.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	deleted := make(chan string, 1)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/v1/watch/locks/backup?start_revision=%d", b, took.Revision+1), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("watch: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	go func() {
		defer close(deleted)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok && strings.Contains(data, `"type":"delete"`) {
				deleted <- data
				return
			}
		}
	}()

	// A release with a revision that is not the holder's is refused.
	if r := callWith(http.MethodDelete, b+lock, "", map[string]string{"If-Match": fmt.Sprintf(`"%d"`, took.Revision+1000)}); r.code != http.StatusPreconditionFailed {
		t.Fatalf("a release with another revision: %s, want 412", r)
	}
	if r := callWith(http.MethodDelete, a+lock, "", map[string]string{"If-Match": fmt.Sprintf(`"%d"`, took.Revision)}); r.code != http.StatusOK {
		t.Fatalf("release: %s", r)
	}
	select {
	case data, ok := <-deleted:
		if !ok {
			t.Fatal("the watch ended without the delete")
		}
		var ev struct {
			Revision uint64 `json:"revision"`
			Events   []struct {
				Type string `json:"type"`
				Key  string `json:"key"`
			} `json:"events"`
		}
		if err := json.Unmarshal([]byte(data), &ev); err != nil || len(ev.Events) != 1 || ev.Events[0].Key != "locks/backup" || ev.Revision <= took.Revision {
			t.Fatalf("watch event %s (%v)", data, err)
		}
	case <-ctx.Done():
		t.Fatal("no delete event before the deadline")
	}
	if r := callWith(http.MethodPut, b+lock, "host-b", map[string]string{"If-None-Match": "*"}); r.code != http.StatusOK {
		t.Fatalf("take the released lock: %s", r)
	}
}
