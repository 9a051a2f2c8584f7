package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"go.uber.org/zap"
)

// runBench carries out cfg: it picks the endpoints, preloads the key space
// for get and mixed, then runs the timed phase until the duration is over,
// the total is issued, or ctx is done. progress, when not nil, gets a
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
	if err != nil {
		return nil, err
	}

	if cfg.command == cmdWatch {
		res, err := runWatch(ctx, cfg, lg, progress, workers)
		if err != nil {
			return nil, err
		}
		res.endpoints = endpoints
		return res, nil
	}
	if cfg.command.preloads() {
		lg.Info("preloading the key space", zap.Int("keys", cfg.keys))
		index, err := preload(ctx, workers, uint64(cfg.keys))
		if err != nil {
			return nil, err
		}
		if cfg.serializable && index > 0 {
			if err := waitApplied(ctx, hc, endpoints, index, cfg.timeout); err != nil {
				return nil, err
			}
		}
	}
	if cfg.command == cmdCAS {
		if err := readRevisions(ctx, workers); err != nil {
			return nil, err
		}
	}

	res := timedPhase(ctx, cfg, workers, progress)
	res.endpoints = endpoints
	return res, nil
}

// newWorkers makes the clients; client i uses endpoint i mod len.
func newWorkers(cfg config, endpoints []string, rt http.RoundTripper) ([]*worker, error) {
	bases := make([]*url.URL, len(endpoints))
	for i, ep := range endpoints {
		u, err := url.Parse(ep)
		if err != nil {
			return nil, fmt.Errorf("endpoint %q: %w", ep, err)
		}
		bases[i] = u
	}
	putHeader := http.Header{
		"User-Agent":   {"raftkv-bench"},
		"Content-Type": {"application/octet-stream"},
	}
	getHeader := http.Header{"User-Agent": {"raftkv-bench"}}
	value := makeValue(cfg.valSize)
	names := newKeyNamer(cfg.keyPrefix, cfg.runID, cfg.keySize)
	query := ""
	if cfg.serializable {
		query = serializableQuery
	}
	rq := ""
	if cfg.command == cmdRange {
		rq = rangeQuery(cfg, names)
	}
	seed := cfg.seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	workers := make([]*worker, cfg.clients)
	for i := range workers {
		w := &worker{
			id:        i,
			base:      bases[i%len(bases)],
			rt:        rt,
			putHeader: putHeader,
			getHeader: getHeader,
			names:     names,
			value:     value,
			cmd:       cfg.command,
			readRatio: cfg.readRatio,
			keys:      uint64(max(cfg.keys, 1)),
			query:     query,
			rng:       rand.New(rand.NewPCG(seed, uint64(i))),
			path:      make([]byte, 0, 128),
		}
		if cfg.command.reads() {
			w.reads = newOpStats()
		}
		if cfg.command.writes() {
			w.writes = newOpStats()
		}
		switch cfg.command {
		case cmdCAS:
			w.casKey = uint64(i / cfg.contention)
			if cfg.contention > 1 {
				w.refused = newOpStats()
			}
		case cmdTxn:
			w.txnKeys = txnKeyJSON(names, i, cfg.txnOps)
			w.compare = cfg.txnCompare
			w.putHeader = http.Header{"User-Agent": userAgent, "Content-Type": jsonType}
		case cmdRange:
			w.rangeQuery = rq
			w.rangeWant = min(cfg.rangeLimit, cfg.keys)
		}
		workers[i] = w
	}
	return workers, nil
}

// makeValue is the value every PUT sends. Made once: generating a value
// per request would measure the generator instead of the node.
func makeValue(size int) []byte {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	v := make([]byte, size)
	for i := range v {
		v[i] = alphabet[i%len(alphabet)]
	}
	return v
}

// timedPhase runs the workers and merges what they measured.
func timedPhase(ctx context.Context, cfg config, workers []*worker, progress io.Writer) *result {
	ctl := &control{total: cfg.total}
	start := time.Now()
	if cfg.total == 0 {
		ctl.deadline = start.Add(cfg.duration)
	}
	stopOnCancel := context.AfterFunc(ctx, ctl.stop)
	defer stopOnCancel()

	var bar *progressBar
	if progress != nil {
		bar = startProgress(progress, ctl, start, cfg.duration)
	}
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() { w.loop(ctl) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	if bar != nil {
		bar.finish()
	}

	res := &result{cfg: cfg, elapsed: elapsed}
	if cfg.command.reads() {
		res.reads = newOpStats()
	}
	if cfg.command.writes() {
		res.writes = newOpStats()
	}
	if cfg.command == cmdCAS && cfg.contention > 1 {
		res.refused = newOpStats()
	}
	for _, w := range workers {
		if res.reads != nil {
			res.reads.merge(w.reads)
		}
		if res.writes != nil {
			res.writes.merge(w.writes)
		}
		if res.refused != nil {
			res.refused.merge(w.refused)
		}
	}
	return res
}
