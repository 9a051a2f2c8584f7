package e2e

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/node/internal/testutil"
)

// writers keep writing unique keys through a set of members and record each
// write that was acknowledged (204 on /<key>, 200 on /v1/kv/<key>). Only those
// are promised to survive; a 503, a 504 or a lost connection may or may not
// have been applied, so such keys are never checked. Every key is written
// once, so a later write can never hide an earlier acknowledged one. Every
// write is also logged with its timing, for tests of how long clients wait.
type writers struct {
	stop chan struct{}
	wg   sync.WaitGroup
	// v1 writes only through /v1/kv, whose answers name the revision.
	v1 bool

	mu    sync.Mutex
	acked map[string]string // path to read the key back → value
	tried int
	log   []timedWrite
}

// timedWrite is one PUT of a writer: through which member, when it was
// sent, how long its answer took, and what it was.
type timedWrite struct {
	member uint64
	path   string
	start  time.Time
	took   time.Duration
	r      reply
}

// startWriters starts one writer per target (a member named twice gets
// two). Each alternates between the raftexample route and the /v1/kv
// route, which must name the same keys.
func startWriters(t *testing.T, prefix string, targets ...*member) *writers {
	return start(t, &writers{}, prefix, targets)
}

// startV1Writers is startWriters through /v1/kv alone.
func startV1Writers(t *testing.T, prefix string, targets ...*member) *writers {
	return start(t, &writers{v1: true}, prefix, targets)
}

func start(t *testing.T, w *writers, prefix string, targets []*member) *writers {
	w.stop, w.acked = make(chan struct{}), make(map[string]string)
	for i, m := range targets {
		w.wg.Go(func() { w.run(fmt.Sprintf("%s-%02d", prefix, i), m) })
	}
	t.Cleanup(w.halt) // a failing test must not leave a writer behind
	return w
}

func (w *writers) run(prefix string, m *member) {
	for seq := 0; ; seq++ {
		select {
		case <-w.stop:
			return
		default:
		}
		key := fmt.Sprintf("%s-%05d", prefix, seq)
		value := fmt.Sprintf("value of %s via %s", key, m.name())
		path, want := "/"+key, http.StatusNoContent
		if w.v1 || seq%2 == 1 {
			path, want = "/v1/kv/"+key, http.StatusOK
		}
		begin := time.Now()
		r := call(http.MethodPut, m.base+path, value)
		w.mu.Lock()
		w.tried++
		w.log = append(w.log, timedWrite{member: m.id, path: path, start: begin, took: time.Since(begin), r: r})
		if r.err == nil && r.code == want {
			w.acked["/"+key] = value
		}
		w.mu.Unlock()
		if !r.ok() {
			// A dead or leaderless member answers at once; pausing
			// keeps this writer from spinning on it.
			select {
			case <-w.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}

// records is a copy of every write's log.
func (w *writers) records() []timedWrite {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.log)
}

// halt stops the writers and waits for their last requests; it may be
// called more than once.
func (w *writers) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	w.wg.Wait()
}

func (w *writers) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// waitAcked waits until at least n writes were acknowledged in all.
func (w *writers) waitAcked(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	testutil.Eventually(t, timeout, fmt.Sprintf("%d acknowledged writes", n), func() error {
		w.mu.Lock()
		defer w.mu.Unlock()
		if len(w.acked) >= n {
			return nil
		}
		return fmt.Errorf("%d acknowledged of %d tried", len(w.acked), w.tried)
	})
}

// snapshot is a copy of the acknowledged writes, for checking after halt.
func (w *writers) snapshot() map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.acked)
}

// checkAll reads every acknowledged write back, linearizably, through each
// of the members, and reports every miss rather than the first.
func checkAll(t *testing.T, acked map[string]string, through ...*member) {
	t.Helper()
	paths := slices.Sorted(maps.Keys(acked))
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, m := range through {
		wg.Go(func() {
			for _, p := range paths {
				err := readValue(m.base, p, acked[p], 20*time.Second)
				if err == nil {
					continue
				}
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", m.name(), err))
				mu.Unlock()
				if errors.Is(err, errUnavailable) {
					return // the member is down: waiting again per key proves nothing
				}
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if i == 20 {
			t.Errorf("... and %d more", len(errs)-i)
			break
		}
		t.Error(err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
}
