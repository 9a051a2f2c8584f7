package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// result is a finished run.
type result struct {
	cfg       config
	endpoints []string // where the clients sent their requests
	elapsed   time.Duration
	reads     *opStats // nil when the command does not read
	writes    *opStats // nil when the command does not write
	refused   *opStats // cas's 412s under --contention: completed, counted apart; else nil
	watch     *watchStats
	leases    *leaseRun // nil without --leases
}

// all is every operation of the run together.
func (r *result) all() *opStats {
	s := newOpStats()
	s.merge(r.reads)
	s.merge(r.writes)
	s.merge(r.refused)
	return s
}

// runBench carries out cfg: it picks the endpoints, opens the watches or
// writes the key space, then runs the timed phase until the duration is
// over, the total is issued, or ctx is done. progress, when not nil, gets a
// progress bar. Every connection it opened is closed when it returns.
func runBench(ctx context.Context, cfg config, lg *zap.Logger, progress io.Writer) (*result, error) {
	tr := newTransport(cfg.clients, cfg.timeout, cfg.tls)
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: cfg.timeout}
	endpoints := cfg.endpoints
	if cfg.target == targetLeader {
		leader, err := findLeader(ctx, hc, cfg.endpoints)
		if err != nil {
			return nil, fmt.Errorf("finding the leader: %w", err)
		}
		lg.Info("sending every request to the leader", zap.String("endpoint", leader))
		endpoints = []string{leader}
	}
	workers, err := newWorkers(cfg, endpoints, tr)
	var watches *watchRun
	if err == nil && cfg.command == cmdWatch {
		watches, err = openWatches(ctx, cfg, lg, tr, workers)
	}
	if err == nil && modes[cfg.command].preloads {
		lg.Info("preloading the key space", zap.Int("keys", cfg.keys))
		var index uint64
		if index, err = preload(ctx, workers, uint64(cfg.keys), nil); err == nil && cfg.serializable && index > 0 {
			err = waitApplied(ctx, hc, endpoints, index, cfg.timeout)
		}
	}
	if err == nil && cfg.command == cmdCAS {
		err = phase(ctx, workers, errRevisions, func(ctx context.Context, w *worker) error {
			if o, status := w.readRevision(); o != outcomeOK && ctx.Err() == nil {
				return fmt.Errorf("%w: client %d via %s: %s (status %d)", errRevisions, w.id, w.base, o, status)
			}
			return nil
		})
	}
	var leases *leaseRun
	if err == nil && cfg.leases > 0 {
		lg.Info("granting leases, a key on each", zap.Int("leases", cfg.leases), zap.Duration("ttl", cfg.leaseTTL))
		leases, err = grantLeases(ctx, cfg, workers, endpoints)
	}
	if err != nil {
		return nil, err
	}
	leases.start(ctx, cfg, workers)
	res := timedPhase(ctx, cfg, workers, progress)
	res.endpoints, res.leases = endpoints, leases.finish(workers)
	if watches != nil {
		res.watch = watches.finish(ctx, cfg.watchGrace, res.writes.ok())
	}
	return res, nil
}

// newWorkers makes the clients; client i uses endpoint i mod len.
func newWorkers(cfg config, endpoints []string, rt http.RoundTripper) ([]*worker, error) {
	bases, err := parseBases(endpoints)
	if err != nil {
		return nil, err
	}
	names := newKeyNamer(cfg.keyPrefix, cfg.runID, cfg.keySize)
	// The value every PUT sends, made once: generating one per request
	// would measure the generator instead of the node.
	value := bytes.Repeat([]byte("abcdefghijklmnopqrstuvwxyz0123456789"), cfg.valSize/36+1)[:cfg.valSize]
	query := ""
	if cfg.serializable {
		query = serializableQuery
	}
	if cfg.command == cmdRange {
		query = rangeQuery(cfg, names)
	}
	seed := cfg.seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	m := modes[cfg.command]
	workers := make([]*worker, cfg.clients)
	for i := range workers {
		workers[i] = &worker{id: i, base: bases[i%len(bases)], rt: rt, op: m.op, cmd: cfg.command, names: names,
			value: value, keys: uint64(max(cfg.keys, 1)), query: query, ratio: cfg.readRatio,
			rng: rand.New(rand.NewPCG(seed, uint64(i))), path: make([]byte, 0, 128),
			reads: newStats(m.reads), writes: newStats(m.writes), refused: newStats(cfg.refusedApart()),
			cas: uint64(i / max(cfg.contention, 1)), want: min(cfg.rangeLimit, cfg.keys), cmp: cfg.txnCompare}
		for j := range cfg.txnOps { // put keys no other client and no put run shares
			workers[i].txn = append(workers[i].txn, string(names.appendPutKey(nil, i, uint64(j))))
		}
	}
	return workers, nil
}

// refusedApart says whether 412s are completed operations, counted apart
// from the writes: cas under contention.
func (cfg *config) refusedApart() bool { return cfg.command == cmdCAS && cfg.contention > 1 }

func newStats(kept bool) *opStats {
	if kept {
		return newOpStats()
	}
	return nil
}

func parseBases(endpoints []string) ([]*url.URL, error) {
	bases := make([]*url.URL, len(endpoints))
	for i, ep := range endpoints {
		u, err := url.Parse(ep)
		if err != nil {
			return nil, fmt.Errorf("endpoint %q: %w", ep, err)
		}
		bases[i] = u
	}
	return bases, nil
}

// control is what the clients share during the timed phase: whether to go
// on, and running totals for the progress bar.
type control struct {
	total    uint64    // requests to issue; 0 means until the deadline
	start    time.Time // of the timed phase
	deadline time.Time // zero when total is set
	issued   atomic.Uint64
	stopped  atomic.Bool
	ok       atomic.Uint64
	failed   atomic.Uint64
	lastN    uint64 // the progress bar's, at its last draw
	lastAt   time.Time
}

// claim reports whether the client may issue one more request. With a
// total, the counter hands out exactly total claims however many clients
// race for them. After stop, clients finish the request they are in: its
// answer may be an acknowledged write that must be counted.
func (c *control) claim() bool {
	switch {
	case c.stopped.Load():
		return false
	case c.total > 0:
		return c.issued.Add(1) <= c.total
	}
	return time.Now().Before(c.deadline)
}

func (c *control) done(o outcome) {
	if o == outcomeOK {
		c.ok.Add(1)
	} else {
		c.failed.Add(1)
	}
}

// draw redraws the progress bar from the counters, atomics, so that the
// clients never wait for it.
func (c *control) draw(out io.Writer, now time.Time) {
	ok, failed := c.ok.Load(), c.failed.Load()
	frac := now.Sub(c.start).Seconds() / c.deadline.Sub(c.start).Seconds()
	if c.total > 0 {
		frac = float64(ok+failed) / float64(c.total)
	}
	// The rate over the last interval shows stalls (an election, say) that
	// an average since the start would smooth away.
	var rate float64
	if dt := now.Sub(c.lastAt).Seconds(); dt > 0 {
		rate = float64(ok+failed-c.lastN) / dt
	}
	c.lastN, c.lastAt = ok+failed, now
	filled := int(min(max(frac, 0), 1) * 30)
	// \x1b[K clears what a longer previous line left behind.
	_, _ = fmt.Fprintf(out, "\r[%s%s] %d ok  %d errors  %.0f ops/s  elapsed %s\x1b[K", strings.Repeat("#", filled),
		strings.Repeat(".", 30-filled), ok, failed, rate, now.Sub(c.start).Truncate(100*time.Millisecond))
}

// timedPhase runs the workers and merges what they measured; progress,
// when not nil, gets the bar redrawn four times a second.
func timedPhase(ctx context.Context, cfg config, workers []*worker, progress io.Writer) *result {
	ctl := &control{total: cfg.total, start: time.Now()}
	ctl.lastAt = ctl.start
	if cfg.total == 0 {
		ctl.deadline = ctl.start.Add(cfg.duration)
	}
	defer context.AfterFunc(ctx, func() { ctl.stopped.Store(true) })()
	res, done := &result{cfg: cfg}, make(chan struct{})
	go func() {
		_ = phase(context.Background(), workers, nil, func(_ context.Context, w *worker) error {
			for ctl.claim() {
				s, o, status, lat := w.op(w)
				if s == nil {
					break
				}
				s.add(o, status, lat)
				if w.expiring != nil && w.expiring.Load() {
					w.during.add(o, status, lat)
				}
				ctl.done(o)
			}
			return nil
		})
		res.elapsed = time.Since(ctl.start)
		close(done)
	}()
	for tick := time.Tick(250 * time.Millisecond); progress != nil; {
		select {
		case now := <-tick:
			ctl.draw(progress, now)
		case <-done:
			ctl.draw(progress, time.Now())
			_, _ = io.WriteString(progress, "\n")
			progress = nil
		}
	}
	<-done
	m := modes[cfg.command]
	res.reads, res.writes, res.refused = newStats(m.reads), newStats(m.writes), newStats(cfg.refusedApart())
	for _, w := range workers {
		res.reads.merge(w.reads)
		res.writes.merge(w.writes)
		res.refused.merge(w.refused)
	}
	return res
}

// phase runs f on every client at once and returns the first error; f's
// context is done once there is one. An interruption (ctx) is an error of
// kind, the phase's.
func phase(ctx context.Context, workers []*worker, kind error, f func(context.Context, *worker) error) error {
	fctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			if err := f(fctx, w); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	if err := context.Cause(fctx); ctx.Err() == nil || errors.Is(err, kind) {
		return err
	}
	return fmt.Errorf("%w: interrupted: %w", kind, ctx.Err())
}

// preload writes every key of the key space once, not timed, so that the
// reads find them. The first failure stops it: a missing key would make
// later reads fail for a reason the benchmark caused itself. It returns
// the highest index the nodes reported for these writes, 0 when their
// answers give none (the raftexample route answers 204). lease, when not
// nil, is asked first for the query of key i's PUT (lease.go).
func preload(ctx context.Context, workers []*worker, keys uint64, lease func(*worker, uint64) (string, error)) (uint64, error) {
	var next atomic.Uint64
	index := make([]uint64, len(workers))
	err := phase(ctx, workers, errPreload, func(ctx context.Context, w *worker) error {
		for i := next.Add(1) - 1; i < keys && ctx.Err() == nil; i = next.Add(1) - 1 {
			query, err := "", error(nil)
			if lease != nil {
				query, err = lease(w, i)
			}
			var a answer
			if err == nil {
				a = w.send(w.newCall(http.MethodPut, w.spacePath(i), query, w.value, nil))
				err = a.failure()
			}
			if err != nil {
				return fmt.Errorf("%w: key %d via %s: %w", errPreload, i, w.base, err)
			}
			idx, _ := topUint(a.body, "index")
			index[w.id] = max(index[w.id], idx)
		}
		return nil
	})
	return slices.Max(index), err
}
