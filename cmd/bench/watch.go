package main

import (
	"context"
	"fmt"
	"math/bits"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// watchStats is what the watchers of a run measured. A delivery is one
// watcher receiving the event of one acknowledged write.
type watchStats struct {
	asked, opened int
	openErrors    opStats    // why the others did not open
	openCause     string     // the first failure, as an example
	acked         uint64     // acknowledged writes
	delivered     uint64     // deliveries, over all watchers
	delay         *histogram // from a write's acknowledgement to each delivery
	early         uint64     // deliveries that came before their acknowledgement: delay 0
	missed        uint64     // acknowledged writes × opened watchers, never delivered
	missedOpen    uint64     // of those, on streams that stayed open to the end
	unacked       uint64     // deliveries of writes never acknowledged (504s, say)
	n             [numEvCounts]uint64
	ended         map[string]uint64 // streams ended before the run, by reason ("dropped": the connection)
	caughtUp      time.Duration     // from the writers' end until every watcher had their last write, or ended
	settled       bool              // false: the grace ran out first
}

func (s *watchStats) endedEarly() (n uint64) {
	for _, c := range s.ended {
		n += c
	}
	return n
}

// watchRun is what the watchers of one run share: read-only but for the
// atomics and the delays under mu.
type watchRun struct {
	watchStats
	epoch    time.Time // of the times in the ack logs
	prefix   []byte    // of the writers' keys, and the watched one
	logs     []*ackLog // by writer
	mu       sync.Mutex
	watchers []*watcher
	reading  sync.WaitGroup
	// target is the highest revision a writer was acknowledged, set once
	// the writers are done (0 until then): a watcher that has seen it has
	// seen every acknowledged write it will.
	target     atomic.Uint64
	pending    atomic.Int64  // watchers not yet settled
	allSettled chan struct{} // closed when pending reaches 0
	stopping   atomic.Bool   // the run closes the streams: a read error is not a drop
	cancel     context.CancelFunc
}

// openWatches opens the watches, spread over every endpoint whatever
// --target says of the writers, 64 at a time so that a thousand do not
// dial at once. It returns once every one is established or failed, so
// that each must deliver every write acknowledged from then on.
func openWatches(ctx context.Context, cfg config, lg *zap.Logger, rt http.RoundTripper, writers []*worker) (*watchRun, error) {
	bases, err := parseBases(cfg.endpoints)
	if err != nil {
		return nil, err
	}
	run := &watchRun{epoch: time.Now(), allSettled: make(chan struct{}),
		prefix:     []byte(writers[0].names.putPrefix()),
		watchStats: watchStats{asked: cfg.watchers, ended: make(map[string]uint64), delay: newHistogram()}}
	// The streams outlive ctx, which an interrupt ends: the report still
	// wants what they delivered. An interrupt while they open ends them.
	var streams context.Context
	streams, run.cancel = context.WithCancel(context.WithoutCancel(ctx))
	defer context.AfterFunc(ctx, run.stop)()
	for _, w := range writers {
		w.acks = &ackLog{epoch: run.epoch}
		run.logs = append(run.logs, w.acks)
	}
	lg.Info("opening the watches", zap.Int("watchers", cfg.watchers))
	// Every watcher is pending until it has the last acknowledged write or
	// its stream is over; one that did not open never was.
	run.pending.Store(int64(cfg.watchers))
	var opening sync.WaitGroup
	slots := make(chan struct{}, 64)
	for i := range cfg.watchers {
		w := &watcher{run: run, base: bases[i%len(bases)]}
		run.watchers = append(run.watchers, w)
		opening.Add(1)
		run.reading.Go(func() {
			slots <- struct{}{}
			body := w.open(streams, rt)
			<-slots
			opening.Done()
			if body != nil {
				w.read(body)
			} else {
				w.settle()
			}
		})
	}
	opening.Wait()
	for _, w := range run.watchers {
		if w.openCause == nil {
			run.opened++
		} else if run.openErrors.add(w.openErr, w.openStatus, 0); run.openCause == "" {
			run.openCause = fmt.Sprintf("%s: %v", w.base.Host, w.openCause)
		}
	}
	if run.opened == 0 {
		run.close()
		return nil, fmt.Errorf("%w: %d tried, first failure %s", errNoWatch, cfg.watchers, run.openCause)
	}
	if run.opened < run.asked {
		lg.Warn("some watches did not open", zap.Int("opened", run.opened), zap.Int("asked", run.asked), zap.String("first", run.openCause))
	}
	return run, nil
}

// stop ends every stream; a read error after it is not a drop.
func (run *watchRun) stop() {
	run.stopping.Store(true)
	run.cancel()
}

// close ends every stream and returns once their readers are gone.
func (run *watchRun) close() {
	run.stop()
	run.reading.Wait()
}

// watchOp PUTs a new key, as put does, and records the revision its answer
// gives and when the answer came. An answer without a revision is a bad
// reply: the watchers could not tell its event.
func (w *worker) watchOp() (*opStats, outcome, int, time.Duration) {
	seq := w.seq
	if seq >= ackCapacity {
		return nil, 0, 0, 0
	}
	w.acks.issued.Store(seq + 1)
	w.seq++
	a := w.send(w.newCall(http.MethodPut, w.putPath(seq), "", w.value, nil))
	rev, ok := topUint(a.body, "revision")
	o := a.outcome(a.status == http.StatusOK && ok && rev > 0)
	if o == outcomeOK {
		w.acks.record(seq, rev, a.end)
	}
	return w.writes, o, a.status, a.lat
}

// finish waits, once the writers are done, until every watcher has the
// last acknowledged write or grace is over, closes the streams and adds up
// what the watchers measured; acked writes were acknowledged to the writers.
func (run *watchRun) finish(ctx context.Context, grace time.Duration, acked uint64) *watchStats {
	writersDone := time.Now()
	var target uint64
	for _, l := range run.logs {
		target = max(target, l.maxRev)
	}
	run.settled = target == 0
	if target > 0 {
		run.target.Store(target)
		for _, w := range run.watchers {
			if w.lastRev.Load() >= target {
				w.settle()
			}
		}
		t := time.NewTimer(grace)
		select {
		case <-run.allSettled:
			run.settled = true
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	run.caughtUp = time.Since(writersDone)
	run.close()
	run.tally(acked)
	return &run.watchStats
}

// tally adds up what the watchers measured, once they are gone.
func (run *watchRun) tally(acked uint64) {
	ackedBits := make([][]uint64, len(run.logs))
	for i, l := range run.logs {
		ackedBits[i] = l.ackedBits()
	}
	run.acked = acked
	var timed uint64
	for _, w := range run.watchers {
		if w.openCause != nil {
			continue
		}
		// Bit by bit: delivered and acknowledged, acknowledged only, or
		// delivered only.
		var missed uint64
		w.seen = grown(w.seen, len(ackedBits))
		for writer, bs := range ackedBits {
			n := max(len(bs), len(w.seen[writer]))
			a, s := grown(bs, n), grown(w.seen[writer], n)
			for i := range n {
				run.delivered += uint64(bits.OnesCount64(s[i] & a[i]))
				missed += uint64(bits.OnesCount64(a[i] &^ s[i]))
				run.unacked += uint64(bits.OnesCount64(s[i] &^ a[i]))
			}
		}
		if run.missed += missed; w.ended == "" {
			run.missedOpen += missed
		} else {
			run.ended[w.ended]++
		}
		timed += w.timed
		run.early += w.clamped
		for i, n := range w.n {
			run.n[i] += n
		}
	}
	// Deliveries whose write was acknowledged only after they came could
	// not be timed then: their delay is clamped to 0.
	if late := run.delivered - timed; run.delivered > timed {
		run.delay.recordN(0, late)
		run.early += late
	}
}

// An ackLog is one watch writer's record of its acknowledged PUTs: for the
// seq-th, the revision the node answered and when the answer came. The
// writer fills it in as its answers come; every watcher reads it for each
// event it receives. It is two-level so that a writer allocates as it goes
// and a reader never sees a slice grow; entries are written once, so after
// a watcher's first read of a chunk its reads hit its own cache.
// A writer that reaches ackCapacity PUTs stops.
const (
	ackChunkBits = 12
	ackChunkSize = 1 << ackChunkBits
	ackCapacity  = ackChunkSize << 12
)

type ackChunk [ackChunkSize]struct {
	at  atomic.Int64 // since the run's epoch, in ns; 0: not acknowledged
	rev atomic.Uint64
}

type ackLog struct {
	epoch time.Time // shared by every log of the run
	// issued is how many PUTs the writer has sent or is sending: a key of
	// a higher seq is not one of its writes. On a cache line of its own,
	// since the writer bumps it while the watchers read the chunks.
	_      [64]byte
	issued atomic.Uint64
	_      [56]byte
	maxRev uint64 // of the acknowledged writes; the writer's, read after it is done
	dir    [ackCapacity / ackChunkSize]atomic.Pointer[ackChunk]
}

// record notes the acknowledgement of the seq-th PUT at revision rev.
func (l *ackLog) record(seq, rev uint64, at time.Time) {
	c := l.dir[seq>>ackChunkBits].Load()
	if c == nil {
		c = new(ackChunk)
		l.dir[seq>>ackChunkBits].Store(c)
	}
	e := &c[seq&(ackChunkSize-1)]
	e.rev.Store(rev)
	e.at.Store(max(int64(at.Sub(l.epoch)), 1)) // last: a reader that sees the time sees the revision
	l.maxRev = max(l.maxRev, rev)
}

// lookup returns when the seq-th PUT (seq < issued) was acknowledged and at
// which revision; at is 0 when it has not been (yet).
func (l *ackLog) lookup(seq uint64) (at int64, rev uint64) {
	if c := l.dir[seq>>ackChunkBits].Load(); c != nil {
		e := &c[seq&(ackChunkSize-1)]
		if at = e.at.Load(); at != 0 {
			return at, e.rev.Load()
		}
	}
	return 0, 0
}

// ackedBits is the set of acknowledged seqs, for the final count.
func (l *ackLog) ackedBits() []uint64 {
	n := l.issued.Load()
	bits := make([]uint64, (n+63)/64)
	for seq := range n {
		if at, _ := l.lookup(seq); at != 0 {
			bits[seq/64] |= 1 << (seq % 64)
		}
	}
	return bits
}
