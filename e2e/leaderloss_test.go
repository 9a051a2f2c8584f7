package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/node/actors"
)

// A leader killed with SIGKILL under 16 writers costs its clients little:
// a write a follower forwarded to it, lost with it, is proposed again once
// the others elect a new leader (the state machine applies it once), so no
// write waits out the request timeout for a 504. Every write, answered or
// failed, takes at most an election timeout and a second; every
// acknowledged one is there.
//
// The election timeout is raft's as it runs: each follower draws its own
// in [ElectionTick, 2×ElectionTick) ticks, so the survivors may wait up to
// twice the nominal timeout before either campaigns (runs measured up to
// 1.9 s against a nominal 1 s). The bound takes that longest draw.
func TestLeaderKilledNoWriteWaitsForTimeout(t *testing.T) {
	// cmd/node has no flag for raft's clock: it runs actors' defaults.
	election := 2 * time.Duration(actors.DefaultElectionTick) * actors.DefaultTickInterval
	bound := election + time.Second

	c := newCluster(t, 3)
	old := c.leader(c.members...)
	targets := make([]*member, 16)
	for i := range targets {
		targets[i] = c.members[i%len(c.members)]
	}
	w := startV1Writers(t, "leaderloss", targets...)
	w.waitAcked(t, 300, 20*time.Second)

	killedAt := time.Now()
	kill9(t, old.p)
	survivors := c.others(old)
	lead := c.leader(survivors...)
	elected := time.Since(killedAt)
	// Writes through the survivors go on under the new leader.
	w.waitAcked(t, w.count()+300, 20*time.Second)
	w.halt()

	var (
		slow, timedOut []timedWrite
		maxTook        time.Duration
		spanning       int           // survivors' writes in flight at the kill
		spanMax        time.Duration // and the longest of them
		outcomes       = make(map[string]int)
	)
	all := w.records()
	for _, r := range all {
		maxTook = max(maxTook, r.took)
		if r.took > bound {
			slow = append(slow, r)
		}
		if r.r.err == nil && r.r.code == http.StatusGatewayTimeout {
			timedOut = append(timedOut, r)
		}
		switch {
		case r.r.err != nil:
			outcomes["no answer"]++
		default:
			outcomes[fmt.Sprint(r.r.code)]++
		}
		if r.member != old.id && r.start.Before(killedAt) && r.start.Add(r.took).After(killedAt) {
			spanning++
			spanMax = max(spanMax, r.took)
		}
	}
	reproposed := 0
	for _, m := range survivors {
		reproposed += strings.Count(m.p.Output(), "proposed again the proposals in flight")
	}
	t.Logf("leader %d killed; %d elected %v later; %d writes (%v), the longest %v (bound %v); "+
		"%d through the survivors in flight at the kill, the longest %v; the survivors proposed again %d times",
		old.id, lead.id, elected.Round(time.Millisecond), len(all), outcomes, maxTook.Round(time.Millisecond), bound,
		spanning, spanMax.Round(time.Millisecond), reproposed)
	for i, r := range timedOut {
		if i == 10 {
			t.Errorf("... and %d more 504s", len(timedOut)-i)
			break
		}
		t.Errorf("PUT %s through node %d sent %v after the kill: 504 after %v: %s", r.path, r.member, r.start.Sub(killedAt).Round(time.Millisecond), r.took.Round(time.Millisecond), r.r)
	}
	for i, r := range slow {
		if i == 10 {
			t.Errorf("... and %d more writes over %v", len(slow)-i, bound)
			break
		}
		t.Errorf("PUT %s through node %d sent %v after the kill took %v, over %v: %s", r.path, r.member, r.start.Sub(killedAt).Round(time.Millisecond), r.took.Round(time.Millisecond), bound, r.r)
	}
	if t.Failed() {
		t.FailNow()
	}
	checkAll(t, w.snapshot(), survivors...)
	checkWrittenOnce(t, lead, all)
}

// rangeKV is a key as a range read lists it.
type rangeKV struct {
	Key         string `json:"key"`
	ModRevision uint64 `json:"mod_revision"`
	Version     uint64 `json:"version"`
}

// checkWrittenOnce reads every key the writers wrote through m and wants
// each written once (version 1), at the revision its acknowledgement
// named: a write whose entry the log holds twice (its copy proposed again
// under the new leader) is applied once.
func checkWrittenOnce(t *testing.T, m *member, writes []timedWrite) {
	t.Helper()
	kvs := make(map[string]rangeKV)
	cont := ""
	for {
		q := url.Values{"prefix": {"leaderloss-"}, "limit": {"10000"}}
		if cont != "" {
			q.Set("continue", cont)
		}
		r := call(http.MethodGet, m.base+"/v1/kv/?"+q.Encode(), "")
		if r.err != nil || r.code != http.StatusOK {
			t.Fatalf("range read through %s: %s", m.name(), r)
		}
		var page struct {
			KVs      []rangeKV `json:"kvs"`
			More     bool      `json:"more"`
			Continue string    `json:"continue"`
		}
		if err := json.Unmarshal([]byte(r.body), &page); err != nil {
			t.Fatalf("range read through %s: %v in %q", m.name(), err, r.body)
		}
		for _, kv := range page.KVs {
			kvs[kv.Key] = kv
		}
		if !page.More {
			break
		}
		cont = page.Continue
	}
	var acked int
	for _, w := range writes {
		key := strings.TrimPrefix(w.path, "/v1/kv/")
		kv, ok := kvs[key]
		if ok && kv.Version != 1 {
			t.Errorf("%s written %d times, want once: %+v", key, kv.Version, kv)
		}
		if !w.r.ok() {
			continue
		}
		acked++
		var ans struct {
			Revision uint64 `json:"revision"`
		}
		if err := json.Unmarshal([]byte(w.r.body), &ans); err != nil {
			t.Fatalf("answer to PUT %s: %v in %q", w.path, err, w.r.body)
		}
		if !ok || kv.ModRevision != ans.Revision {
			t.Errorf("%s acknowledged at revision %d, read back as %+v (present %v)", key, ans.Revision, kv, ok)
		}
	}
	t.Logf("%d keys written, each once; the %d acknowledged at the revision they were answered", len(kvs), acked)
}
