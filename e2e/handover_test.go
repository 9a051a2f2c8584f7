package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/raftkv/node/internal/testutil"
)

// ackLog records, for writers that write one key after another, when each
// write was acknowledged and which failed.
type ackLog struct {
	mu     sync.Mutex
	acks   []time.Time
	failed []string
}

func (l *ackLog) record(ok bool, what string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ok {
		l.acks = append(l.acks, time.Now())
	} else {
		l.failed = append(l.failed, what)
	}
}

// window returns the acknowledgements and failures seen so far.
func (l *ackLog) window() ([]time.Time, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	acks := slices.Clone(l.acks)
	slices.SortFunc(acks, func(a, b time.Time) int { return a.Compare(b) })
	return acks, slices.Clone(l.failed)
}

// A leader stopped with SIGTERM hands leadership to another voter first:
// writers on the other members see at most 2 failed writes and no gap over
// 500 ms between acknowledged writes, and the stopped leader logs that it
// handed over.
func TestLeaderStopHandsOver(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader(c.members...)
	followers := c.others(lead)

	var log ackLog
	halt := make(chan struct{})
	var wg sync.WaitGroup
	for _, m := range followers {
		for w := range 2 {
			wg.Go(func() {
				for seq := 0; ; seq++ {
					select {
					case <-halt:
						return
					default:
					}
					key := fmt.Sprintf("/handover-%d-%d-%d", m.id, w, seq)
					r := call(http.MethodPut, m.base+key, "v")
					log.record(r.code == http.StatusNoContent, fmt.Sprintf("%s: %s", key, r))
				}
			})
		}
	}
	defer func() {
		select {
		case <-halt:
		default:
			close(halt)
		}
		wg.Wait()
	}()
	testutil.Eventually(t, 20*time.Second, "writes before the stop", func() error {
		acks, _ := log.window()
		if len(acks) >= 200 {
			return nil
		}
		return fmt.Errorf("%d acknowledged", len(acks))
	})

	stoppedAt := time.Now()
	lead.p.SignalAndWait(t, syscall.SIGTERM, 0, 20*time.Second)
	exitedAt := time.Now()
	newLead := c.leader(followers...)
	// The window runs from a second before the stop to 200 acknowledged
	// writes after the exit.
	testutil.Eventually(t, 20*time.Second, "writes after the stop", func() error {
		acks, _ := log.window()
		n := len(acks) - sort.Search(len(acks), func(i int) bool { return acks[i].After(exitedAt) })
		if n >= 200 {
			return nil
		}
		return fmt.Errorf("%d acknowledged after the exit", n)
	})
	close(halt)
	wg.Wait()

	acks, failed := log.window()
	from, to := stoppedAt.Add(-time.Second), acks[len(acks)-1]
	var gap time.Duration
	var in []time.Time
	for _, a := range acks {
		if !a.Before(from) && !a.After(to) {
			in = append(in, a)
		}
	}
	for i := 1; i < len(in); i++ {
		gap = max(gap, in[i].Sub(in[i-1]))
	}
	t.Logf("leader %d stopped in %v; %d writes acknowledged in the window, longest gap %v, %d failed %v; new leader %d",
		lead.id, exitedAt.Sub(stoppedAt), len(in), gap, len(failed), failed, newLead.id)
	if len(in) < 10 {
		t.Fatalf("only %d writes acknowledged around the stop", len(in))
	}
	if len(failed) > 2 {
		t.Errorf("%d writes failed around the stop, want at most 2: %v", len(failed), failed)
	}
	if gap > 500*time.Millisecond {
		t.Errorf("longest gap between acknowledged writes %v, want at most 500 ms", gap)
	}
	if len(logEntries(lead.p.Output(), "handed leadership over before stopping")) != 1 {
		t.Errorf("the stopped leader did not log that it handed over:\n%s", testutil.Tail(lead.p.Output(), 20))
	}
}

// POST /v1/leader moves leadership on demand, asked of any member.
func TestLeadershipMovedOnDemand(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader(c.members...)
	to := c.others(lead)[0]
	via := c.others(lead)[1] // a follower: raft forwards the request to the leader
	r := call(http.MethodPost, via.base+"/v1/leader", fmt.Sprintf(`{"id":%d}`, to.id))
	if r.code != http.StatusOK || r.body != fmt.Sprintf(`{"leader":%d}`+"\n", to.id) {
		t.Fatalf("POST /v1/leader {id: %d} through %s: %s", to.id, via.name(), r)
	}
	if got := c.leader(c.members...); got != to {
		t.Fatalf("leader is %s after the move, want %s", got.name(), to.name())
	}
	if r := call(http.MethodPost, via.base+"/v1/leader", `{"id":9}`); r.code != http.StatusNotFound {
		t.Fatalf("POST /v1/leader to an unknown member: %s, want 404", r)
	}
	mustWrite(t, via.base, "/after-move", "v", http.StatusNoContent)
}
