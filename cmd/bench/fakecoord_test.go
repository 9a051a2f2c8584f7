package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// The fake node's coordination API, as docs/api.md gives it: revisions,
// If-Match, transactions, range reads and the watch stream.

// fakeEvent is one write, as the watch streams it.
type fakeEvent struct {
	rev   uint64
	key   string
	value []byte
}

// watchAction is what a fake watch stream does with one event.
type watchAction int

const (
	watchSend  watchAction = iota
	watchSplit             // send it in pieces, flushed one by one
	watchSkip              // leave it out, as a node losing it would
	watchTwice             // send it, then again
	watchEnd               // send an "end" event with reason overflow instead, and stop
	watchDrop              // cut the connection instead
)

// write stores key at a new revision and logs it for the watches; f.mu is
// held.
func (f *fakeNode) write(key string, value []byte) uint64 {
	f.rev++
	f.values[key] = value
	if f.createRev[key] == 0 {
		f.createRev[key] = f.rev
	}
	f.modRev[key] = f.rev
	f.version[key]++
	f.log = append(f.log, fakeEvent{rev: f.rev, key: key, value: value})
	close(f.changed)
	f.changed = make(chan struct{})
	return f.rev
}

// interfered asks the test whether another writer writes key before the
// conditional write in progress; f.mu is held.
func (f *fakeNode) interfered(key string) {
	n := f.condN
	f.condN++
	if f.interfere != nil && f.interfere(n) {
		f.write(key, []byte("someone else"))
	}
}

// checkMatch applies If-Match to a PUT of key, answering 412 itself when it
// does not hold; f.mu is held.
func (f *fakeNode) checkMatch(w http.ResponseWriter, key, ifMatch string) bool {
	f.interfered(key)
	want, err := strconv.ParseUint(strings.Trim(ifMatch, `"`), 10, 64)
	if err != nil || !strings.HasPrefix(ifMatch, `"`) {
		http.Error(w, "bad If-Match", http.StatusBadRequest)
		return false
	}
	cur := f.modRev[key]
	if cur != 0 && cur == want {
		return true
	}
	f.conflicts++
	if cur != 0 {
		w.Header().Set("ETag", `"`+strconv.FormatUint(cur, 10)+`"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusPreconditionFailed)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": "precondition failed", "revision": f.rev, "mod_revision": cur})
	return false
}

func (f *fakeNode) etag(key string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if rev := f.modRev[key]; rev != 0 {
		return `"` + strconv.FormatUint(rev, 10) + `"`
	}
	return ""
}

// fakeKV is a key as range answers and transactions give it.
type fakeKV struct {
	Key            string `json:"key"`
	Value          string `json:"value,omitempty"`
	CreateRevision uint64 `json:"create_revision"`
	ModRevision    uint64 `json:"mod_revision"`
	Version        uint64 `json:"version"`
}

func (f *fakeNode) kv(key string, withValue bool) fakeKV {
	kv := fakeKV{Key: key, CreateRevision: f.createRev[key], ModRevision: f.modRev[key], Version: f.version[key]}
	if withValue {
		kv.Value = string(f.values[key])
	}
	return kv
}

// serveTxn runs a transaction of compares on mod_revision and puts and gets.
func (f *fakeNode) serveTxn(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Compare []struct {
			Key    string `json:"key"`
			Target string `json:"target"`
			Op     string `json:"op"`
			Number uint64 `json:"number"`
		} `json:"compare"`
		Success, Failure []struct {
			Op    string  `json:"op"`
			Key   string  `json:"key"`
			Value *string `json:"value"`
		}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || r.Method != http.MethodPost {
		http.Error(w, fmt.Sprint("bad transaction: ", err), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.txns
	f.txns++
	if len(body.Compare) > 0 {
		f.interfered(body.Compare[0].Key)
	}
	ok := true
	for _, c := range body.Compare {
		if c.Target != "mod_revision" || c.Op != "=" {
			http.Error(w, "the fake compares mod_revision = only", http.StatusBadRequest)
			return
		}
		ok = ok && f.modRev[c.Key] == c.Number
	}
	ops := body.Success
	if !ok {
		ops = body.Failure
		f.conflicts++
	} else {
		f.committed++
	}
	var results []map[string]any
	wrote := false
	for _, op := range ops {
		switch op.Op {
		case "put":
			if !wrote {
				f.rev++ // one revision for the whole transaction
				wrote = true
			}
			f.values[op.Key] = []byte(*op.Value)
			if f.createRev[op.Key] == 0 {
				f.createRev[op.Key] = f.rev
			}
			f.modRev[op.Key] = f.rev
			f.version[op.Key]++
			f.log = append(f.log, fakeEvent{rev: f.rev, key: op.Key, value: []byte(*op.Value)})
			results = append(results, map[string]any{"op": "put"})
		case "get":
			kvs := []fakeKV{}
			if f.modRev[op.Key] != 0 {
				kvs = append(kvs, f.kv(op.Key, true))
			}
			results = append(results, map[string]any{"op": "get", "kvs": kvs, "count": len(kvs)})
		}
	}
	if wrote {
		close(f.changed)
		f.changed = make(chan struct{})
	}
	if f.txnTimeout != nil && f.txnTimeout(n) {
		http.Error(w, "timed out", http.StatusGatewayTimeout)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"index": f.rev, "revision": f.rev, "succeeded": ok, "results": results})
}

// serveRange answers GET /v1/kv/?prefix=P&limit=N[&keys_only=true].
func (f *fakeNode) serveRange(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || !q.Has("prefix") {
		http.Error(w, "the fake wants prefix and limit", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.ranges
	f.ranges++
	f.queries[r.URL.RawQuery]++
	var keys []string
	for k := range f.values {
		if strings.HasPrefix(k, q.Get("prefix")) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	more := len(keys) > limit
	keys = keys[:min(limit, len(keys))]
	if f.rangeCut != nil {
		keys = keys[:len(keys)-min(f.rangeCut(n), len(keys))]
	}
	kvs := []fakeKV{}
	for _, k := range keys {
		kvs = append(kvs, f.kv(k, q.Get("keys_only") != "true"))
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"revision": f.rev, "kvs": kvs, "more": more, "count": len(kvs)})
}

// serveWatch streams the writes under the prefix from the next revision
// on, as SSE; watchHook can make it misbehave.
func (f *fakeNode) serveWatch(w http.ResponseWriter, r *http.Request, prefix string) {
	if f.noWatch {
		http.NotFound(w, r)
		return
	}
	f.mu.Lock()
	id := f.watchers
	f.watchers++
	f.watchQuery[r.URL.RawQuery]++
	pos := len(f.log)
	f.mu.Unlock()
	fl := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "retry: 1000\n\n: a comment\n\n")
	fl.Flush()
	sent := 0
	for {
		f.mu.Lock()
		events, changed := f.log[pos:], f.changed
		pos = len(f.log)
		f.mu.Unlock()
		for _, ev := range events {
			if !strings.HasPrefix(ev.key, prefix) {
				continue
			}
			action := watchSend
			if f.watchHook != nil {
				action = f.watchHook(id, sent)
			}
			sent++
			msg := fmt.Sprintf("id: %d\ndata: {\"revision\":%d,\"events\":[{\"type\":\"put\",\"key\":%q,\"value\":%q,\"create_revision\":%d,\"mod_revision\":%d,\"version\":1}]}\n\n",
				ev.rev, ev.rev, ev.key, ev.value, ev.rev, ev.rev)
			switch action {
			case watchSkip:
				continue
			case watchEnd:
				_, _ = fmt.Fprintf(w, "event: end\ndata: {\"resume_revision\":%d,\"reason\":\"overflow\"}\n\n", ev.rev)
				fl.Flush()
				return
			case watchDrop:
				panic(http.ErrAbortHandler)
			case watchSplit:
				for len(msg) > 0 {
					n := min(7, len(msg))
					_, _ = io.WriteString(w, msg[:n])
					fl.Flush()
					msg = msg[n:]
				}
			case watchTwice:
				_, _ = io.WriteString(w, msg+msg)
			default:
				_, _ = io.WriteString(w, msg)
			}
			if f.progressEvery > 0 && sent%f.progressEvery == 0 {
				_, _ = fmt.Fprintf(w, "event: progress\nid: %d\ndata: {\"revision\":%d}\n\n", ev.rev, ev.rev)
			}
			fl.Flush()
		}
		select {
		case <-changed:
		case <-r.Context().Done():
			return
		}
	}
}

// watchCounts returns the fake's watch tallies under its lock.
func (f *fakeNode) watchCounts() (watchers int, queries map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.watchers, maps.Clone(f.watchQuery)
}

// coordCounts are the fake's coordination tallies.
type coordCounts struct {
	conflicts, condN, txns, committed, ranges int
	rev                                       uint64
}

func (f *fakeNode) coord() coordCounts {
	f.mu.Lock()
	defer f.mu.Unlock()
	return coordCounts{conflicts: f.conflicts, condN: f.condN, txns: f.txns, committed: f.committed, ranges: f.ranges, rev: f.rev}
}
