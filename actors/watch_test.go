package actors

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/node/messages"
	"github.com/raftkv/node/watch"
)

// putValue writes key through the kv actor, retrying until a leader takes it.
func putValue(t *testing.T, n *Node, key, value string) uint64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := n.Root().RequestFuture(n.KV(), messages.Put{Key: key, Value: []byte(value)}, 5*time.Second).Result()
		if err == nil && res.(messages.Result).Err == nil {
			return res.(messages.Result).Revision
		}
		if time.Now().After(deadline) {
			t.Fatalf("put %s: %v %v", key, err, res)
		}
		time.Sleep(10 * time.Millisecond) // polling interval while a leader is elected
	}
}

func openWatch(t *testing.T, n *Node, f watch.Filter, start uint64) *watch.Stream {
	t.Helper()
	s, err := watch.Open(watch.StreamConfig{Root: n.Root(), Hub: n.Watch(), History: n.History(), Filter: f, Start: start})
	if err != nil {
		t.Fatalf("open a watch from %d: %v", start, err)
	}
	t.Cleanup(s.Close)
	return s
}

// readItems reads until n events, or the end, and returns them as
// "rev:json" lines (the end as "end:reason:resume").
func readItems(t *testing.T, s *watch.Stream, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	for len(got) < n {
		items, err := s.Next(ctx, nil)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		for _, it := range items {
			switch it.Kind {
			case watch.KindEvents:
				got = append(got, fmt.Sprintf("%d:%s", it.Revision, it.JSON()))
			case watch.KindEnd:
				return append(got, fmt.Sprintf("end:%s:%d", it.Reason, it.Revision))
			}
		}
	}
	return got
}

// The member's kv actor feeds its watch hub, and its db serves a watch from
// a past revision, before and after a restart: live and replayed streams
// see the same revisions.
func TestNodeServesWatches(t *testing.T) {
	dir := t.TempDir()
	n := startLoneNode(t, dir, nil)
	first := putValue(t, n, "w/a", "1")
	live := openWatch(t, n, watch.Filter{Key: "w/", Prefix: true}, 0)
	revs := []uint64{first}
	for i := range 5 {
		revs = append(revs, putValue(t, n, fmt.Sprintf("w/%d", i), "v"))
		putValue(t, n, "other", "x")
	}
	got := readItems(t, live, 5)
	replay := readItems(t, openWatch(t, n, watch.Filter{Key: "w/", Prefix: true}, first), 6)
	if strings.Join(replay[1:], "\n") != strings.Join(got, "\n") {
		t.Fatalf("live:\n%s\nreplayed:\n%s", strings.Join(got, "\n"), strings.Join(replay, "\n"))
	}
	for i, line := range replay {
		if !strings.HasPrefix(line, fmt.Sprintf("%d:", revs[i])) {
			t.Fatalf("event %d is %s, want revision %d", i, line, revs[i])
		}
	}
	if err := n.StopWatches(); err != nil {
		t.Fatal(err)
	}
	if end := readItems(t, live, 1); len(end) != 1 || !strings.HasPrefix(end[0], "end:stopping:") {
		t.Fatalf("after StopWatches: %v", end)
	}
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}

	n = startLoneNode(t, dir, nil)
	defer n.Stop()
	resumed := readItems(t, openWatch(t, n, watch.Filter{Key: "w/", Prefix: true}, first), 6)
	if strings.Join(resumed, "\n") != strings.Join(replay, "\n") {
		t.Fatalf("after a restart:\n%s\nbefore:\n%s", strings.Join(resumed, "\n"), strings.Join(replay, "\n"))
	}
}
