package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Leases during a put run (--leases): before the timed phase the clients
// grant them and put key i of the key space (put has no other use for it)
// on lease i; during it leaseHolders more clients renew each every TTL/3,
// spread over the period, as etcd's clients do. --leases-expire instead
// renews them all at once just before the timed phase and never again;
// their keys are counted every 250 ms, and the PUTs that end between the
// first seen gone and the last are counted apart too.

const (
	leasesPath   = "/v1/leases"
	leaseHolders = 16
)

type leaseRun struct {
	ids          []string
	holders      []*worker // on a transport of their own
	tr           *http.Transport
	count        string        // the query counting the keys left
	sent, failed atomic.Uint64 // keep-alives
	stop         chan struct{}
	wg           sync.WaitGroup
	begin        time.Time     // of the timed phase
	first, gone  time.Duration // into it, when the first key and every key were seen gone; 0: not seen
	span         time.Duration // from first to gone, or to the end
	expiring     atomic.Bool   // from first to gone
	during       *opStats      // the requests that ended then
	left         int           // keys left after the run; -1: not counted
}

// grantLeases grants cfg.leases leases and puts key i on lease i, from
// every client, not timed.
func grantLeases(ctx context.Context, cfg config, workers []*worker, endpoints []string) (*leaseRun, error) {
	l := &leaseRun{ids: make([]string, cfg.leases), tr: newTransport(leaseHolders, cfg.timeout, cfg.tls), stop: make(chan struct{}),
		left: -1, during: newOpStats(), count: "prefix=" + url.QueryEscape(workers[0].names.spacePrefix()) + "&count_only=true"}
	hcfg := cfg
	hcfg.clients = leaseHolders
	holders, err := newWorkers(hcfg, endpoints, l.tr)
	l.holders = holders
	grant := fmt.Appendf(nil, `{"ttl":%d}`, cfg.leaseTTL/time.Second)
	if err == nil {
		_, err = preload(ctx, workers, uint64(cfg.leases), func(w *worker, i uint64) (string, error) {
			a := w.send(w.newCall(http.MethodPost, leasesPath, "", grant, nil))
			var got struct{ ID string }
			err := a.failure()
			if err == nil && (json.Unmarshal(a.body, &got) != nil || got.ID == "") {
				err = fmt.Errorf("not a grant: %s", oneLine(a.body))
			}
			if err != nil {
				return "", fmt.Errorf("granting a lease: %w", err)
			}
			l.ids[i] = got.ID
			return "lease=" + got.ID, nil
		})
	}
	return l, err
}

func (l *leaseRun) renew(w *worker, id string) {
	if l.sent.Add(1); w.send(w.newCall(http.MethodPost, leasesPath+"/"+id+"/keepalive", "", nil, nil)).failure() != nil {
		l.failed.Add(1)
	}
}

func (l *leaseRun) keysLeft() (int, bool) {
	a := l.holders[0].send(l.holders[0].newCall(http.MethodGet, kvPath, l.count, nil, nil))
	n, ok := topUint(a.body, "count")
	return int(n), ok && a.failure() == nil
}

// start starts the leases' part of the timed phase, which starts as it
// returns.
func (l *leaseRun) start(ctx context.Context, cfg config, workers []*worker) {
	if l == nil {
		return
	}
	n := len(l.ids)
	if !cfg.leasesExpire {
		// Renewal k of lease i is due k·period + i·period/n into the run.
		l.begin = time.Now()
		period := cfg.leaseTTL / 3
		for h, w := range l.holders {
			l.wg.Go(func() {
				for slot := h; ; slot += len(l.holders) {
					select {
					case <-l.stop:
						return
					case <-time.After(time.Until(l.begin.Add(period*time.Duration(slot/n) + period*time.Duration(slot%n)/time.Duration(n)))):
					}
					l.renew(w, l.ids[slot%n])
				}
			})
		}
		return
	}
	var next atomic.Uint64
	_ = phase(ctx, workers, nil, func(ctx context.Context, w *worker) error {
		for i := next.Add(1) - 1; i < uint64(n) && ctx.Err() == nil; i = next.Add(1) - 1 {
			l.renew(w, l.ids[i])
		}
		w.expiring, w.during = &l.expiring, newOpStats()
		return nil
	})
	l.begin = time.Now()
	l.wg.Go(func() {
		for tick := time.Tick(250 * time.Millisecond); l.gone == 0; {
			select {
			case <-l.stop:
				return
			case <-tick:
			}
			left, ok := l.keysLeft()
			if ok && left < n && l.first == 0 {
				l.first = time.Since(l.begin)
				l.expiring.Store(true)
			}
			if ok && left == 0 {
				l.expiring.Store(false)
				l.gone = time.Since(l.begin)
			}
		}
	})
}

// finish ends the leases' part of the timed phase and counts the keys left.
func (l *leaseRun) finish(workers []*worker) *leaseRun {
	if l == nil {
		return nil
	}
	end := time.Since(l.begin)
	close(l.stop)
	l.wg.Wait()
	if l.first > 0 {
		l.span = cmp.Or(l.gone, end) - l.first
	}
	for _, w := range workers {
		l.during.merge(w.during)
	}
	if left, ok := l.keysLeft(); ok {
		l.left = left
	}
	l.tr.CloseIdleConnections()
	return l
}

// jsonLeases is the leases' part of the JSON report; a count or a time
// not known is -1 or 0.
func jsonLeases(cfg config, l *leaseRun) obj {
	o := obj{{"granted", len(l.ids)}, {"ttl_seconds", cfg.leaseTTL.Seconds()}, {"expire", cfg.leasesExpire},
		{"keepalives_sent", l.sent.Load()}, {"keepalives_failed", l.failed.Load()}, {"keys_left", l.left}}
	if cfg.leasesExpire {
		o = append(o, field{"first_gone_seconds", l.first.Seconds()}, field{"all_gone_seconds", l.gone.Seconds()},
			field{"while_expiring", append(obj{{"seconds", l.span.Seconds()}}, jsonSection(l.during, &result{cfg: cfg, elapsed: l.span})...)})
	}
	return o
}

// writeLeases is the leases' part of the text report.
func writeLeases(w io.Writer, cfg config, l *leaseRun) {
	ms := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	how := fmt.Sprintf("kept alive every %s", ms(cfg.leaseTTL/3))
	if cfg.leasesExpire {
		how = "renewed once as the timed phase began, then let expire"
	}
	left := fmt.Sprintf("%d of %d left", l.left, len(l.ids))
	if l.left < 0 {
		left = "not counted"
	}
	fmt.Fprintf(w, "\nLeases:      %d granted (TTL %s), a key on each, %s; keep-alives: %d sent, %d failed\nLease keys:  %s after the run",
		len(l.ids), cfg.leaseTTL, how, l.sent.Load(), l.failed.Load(), left)
	switch {
	case !cfg.leasesExpire:
	case l.first == 0:
		fmt.Fprint(w, "; none seen gone in the timed phase")
	case l.gone == 0:
		fmt.Fprintf(w, "; the first seen gone %s into the timed phase, not all by its end", ms(l.first))
	default:
		fmt.Fprintf(w, "; the first seen gone %s into the timed phase, all %s into it", ms(l.first), ms(l.gone))
	}
	fmt.Fprintln(w)
	if l.first > 0 {
		fmt.Fprintf(w, "\nWhile expiring (the %s after the first was seen gone):\n  Ops:         %d acknowledged of %d requests, %.1f ops/s\n",
			ms(l.span), l.during.ok(), l.during.requests(), perSecond(l.during.ok(), l.span))
		writeLatency(w, "  ", "Latency", l.during.lat)
	}
}
