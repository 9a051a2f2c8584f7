package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"sync"
	"time"

	"go.uber.org/zap"
)

// errNoWatch is returned when not one watch of a watch run could be opened.
var errNoWatch = errors.New("no watch could be opened")

// watchOpeners bounds the watches being opened at once, so that a
// thousand do not all dial in the same instant.
const watchOpeners = 64

// watchStats is what the watchers of a run measured. A delivery is one
// watcher receiving the event of one acknowledged write.
type watchStats struct {
	asked, opened int
	openErrors    errorCounts // why the others did not open
	openCause     string      // the first failure, as an example
	acked         uint64      // acknowledged writes
	delivered     uint64      // deliveries, over all watchers
	delay         *histogram  // from a write's acknowledgement to each delivery
	early         uint64      // deliveries that came before their acknowledgement: delay 0
	missed        uint64      // acknowledged writes × opened watchers, never delivered
	missedOpen    uint64      // of those, on streams that stayed open to the end
	unacked       uint64      // deliveries of writes never acknowledged (504s, say)
	dup           uint64
	disorder      uint64
	wrongRev      uint64
	foreign       uint64
	badData       uint64
	progress      uint64
	otherType     uint64
	ended         map[string]uint64 // streams ended before the run, by reason ("dropped": the connection)
	// caughtUp is how long after the writers' end every watcher had
	// delivered the last acknowledged write (or ended); when settled is
	// false the grace ran out first.
	caughtUp time.Duration
	settled  bool
}

func (s *watchStats) endedEarly() uint64 {
	var n uint64
	for _, c := range s.ended {
		n += c
	}
	return n
}

// runWatch carries out a watch run: it opens the watches, spread over
// every endpoint whatever --target says of the writers, runs the writers
// once every watch that could open is established (so that each must
// deliver every write acknowledged from then on), waits until each watcher
// has the last acknowledged write or --watch-grace is over, and closes
// the watches.
func runWatch(ctx context.Context, cfg config, lg *zap.Logger, progress io.Writer, writers []*worker) (*result, error) {
	run := &watchRun{
		epoch:   time.Now(),
		prefix:  []byte(newKeyNamer(cfg.keyPrefix, cfg.runID, cfg.keySize).putPrefix()),
		delays:  newDelaySink(max(2*runtime.GOMAXPROCS(0), 4)),
		settled: make(chan struct{}),
	}
	run.logs = make([]*ackLog, len(writers))
	for i, w := range writers {
		run.logs[i] = newAckLog(run.epoch)
		w.acks = run.logs[i]
	}
	bases := make([]*url.URL, len(cfg.endpoints))
	for i, ep := range cfg.endpoints {
		u, err := url.Parse(ep)
		if err != nil {
			return nil, fmt.Errorf("endpoint %q: %w", ep, err)
		}
		bases[i] = u
	}
	d := &net.Dialer{Timeout: cfg.timeout, KeepAlive: 30 * time.Second}
	// Without --cacert, --cert or --key, https is checked against the
	// system's roots, as the writers' transport does; HTTP/1.1 either way.
	plainTLS := &tls.Dialer{NetDialer: d, Config: &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}}
	dialers := map[string]func(context.Context, string, string) (net.Conn, error){"http": d.DialContext, "https": plainTLS.DialContext}
	if cfg.tls != nil {
		dialers["https"] = cfg.tls.DialTLSContext(d)
	}

	lg.Info("opening the watches", zap.Int("watchers", cfg.watchers))
	watchers := make([]*watcher, cfg.watchers)
	var (
		opening, reading sync.WaitGroup
		slots            = make(chan struct{}, watchOpeners)
	)
	// Every watcher is pending until it has the last acknowledged write or
	// its stream is over; one that did not open never was.
	run.pending.Store(int64(cfg.watchers))
	for i := range watchers {
		w := &watcher{id: i, run: run, base: bases[i%len(bases)]}
		watchers[i] = w
		opening.Add(1)
		reading.Go(func() {
			slots <- struct{}{}
			body, ok := w.open(ctx, dialers[w.base.Scheme], cfg.timeout)
			<-slots
			opening.Done()
			if ok {
				w.read(body)
			} else {
				w.settle()
			}
		})
	}
	opening.Wait()

	ws := &watchStats{asked: cfg.watchers, ended: make(map[string]uint64)}
	for _, w := range watchers {
		if w.openCause == nil {
			ws.opened++
			continue
		}
		s := opStats{}
		s.add(w.openErr, w.openStatus, 0)
		ws.openErrors.merge(&s.errors)
		if ws.openCause == "" {
			ws.openCause = fmt.Sprintf("%s: %v", w.base.Host, w.openCause)
		}
	}
	closeAll := func() {
		run.stopping.Store(true)
		for _, w := range watchers {
			if w.conn != nil {
				_ = w.conn.Close()
			}
		}
		reading.Wait()
	}
	if ws.opened == 0 {
		closeAll()
		return nil, fmt.Errorf("%w: %d tried, first failure %s", errNoWatch, cfg.watchers, ws.openCause)
	}
	if ws.opened < ws.asked {
		lg.Warn("some watches did not open", zap.Int("opened", ws.opened), zap.Int("asked", ws.asked), zap.String("first", ws.openCause))
	}

	res := timedPhase(ctx, cfg, writers, progress)
	writersDone := time.Now()

	var target uint64
	for _, l := range run.logs {
		target = max(target, l.maxRev)
	}
	if target > 0 {
		run.target.Store(target)
		for _, w := range watchers {
			if w.lastRev.Load() >= target {
				w.settle()
			}
		}
		grace := time.NewTimer(cfg.watchGrace)
		select {
		case <-run.settled:
			ws.settled = true
		case <-grace.C:
		case <-ctx.Done():
		}
		grace.Stop()
	} else {
		ws.settled = true
	}
	ws.caughtUp = time.Since(writersDone)
	closeAll()

	ws.tally(watchers, run, res.writes.ok)
	res.watch = ws
	return res, nil
}

// watchWriteLoop is the timed phase of a watch writer: PUT new keys, as
// put does, and record for every acknowledged one the revision its answer
// gives and when the answer came. An answer without a revision is a bad
// reply: the watchers could not tell its event.
func (w *worker) watchWriteLoop(ctl *control) {
	now := time.Now()
	for ctl.claim(now) {
		seq := w.seq
		if seq >= ackCapacity {
			return
		}
		w.acks.issued.Store(seq + 1)
		req := w.putRequest()
		start := time.Now()
		status, _, body, ok := w.send(req)
		now = time.Now()
		o := outcomeOf(status, ok)
		if ok && status == http.StatusOK {
			rev, found := topUint(body, "revision")
			if found && rev > 0 {
				o = outcomeOK
				w.acks.record(seq, rev, now)
			}
		}
		w.writes.add(o, status, now.Sub(start))
		ctl.done(o)
	}
}

// tally adds up what the watchers measured, once they are gone: acked
// writes were acknowledged to the writers.
func (ws *watchStats) tally(watchers []*watcher, run *watchRun, acked uint64) {
	ackedBits := make([][]uint64, len(run.logs))
	for i, l := range run.logs {
		ackedBits[i] = l.ackedBits()
	}
	ws.acked = acked
	var timed uint64
	for _, w := range watchers {
		if w.openCause != nil {
			continue
		}
		delivered, missed, unacked := w.tally(ackedBits)
		ws.delivered += delivered
		ws.missed += missed
		if w.ended == "" {
			ws.missedOpen += missed
		} else {
			ws.ended[w.ended]++
		}
		ws.unacked += unacked
		timed += w.timed
		ws.early += w.clamped
		ws.dup += w.dup
		ws.disorder += w.disorder
		ws.wrongRev += w.wrongRev
		ws.foreign += w.foreign
		ws.badData += w.badData
		ws.progress += w.progress
		ws.otherType += w.otherType
	}
	ws.delay = run.delays.merged()
	// Deliveries whose write was acknowledged only after they came, so
	// that they could not be timed then: their delay is clamped to 0.
	if ws.delivered > timed {
		late := ws.delivered - timed
		ws.delay.recordN(0, late)
		ws.early += late
	}
}
