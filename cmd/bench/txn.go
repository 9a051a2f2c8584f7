package main

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

const txnPath = "/v1/txn"

// txnLoop is the timed phase of a txn client: one POST /v1/txn at a time,
// putting a new value into each of the client's --txn-ops keys. With
// --compare the transaction is guarded by the first key's mod_revision
// being the revision of the client's last transaction, which only the
// client writes: it holds unless the node lost or misreported a write,
// and a transaction that did not succeed is an error of its own kind. Its
// failure branch reads the first key, so that the client learns where the
// key is and the next one can succeed.
func (w *worker) txnLoop(ctl *control) {
	now := time.Now()
	for ctl.claim(now) {
		if w.compare && w.stale {
			if o, status := w.readRevision(); o != outcomeOK {
				w.writes.add(o, status, 0)
				ctl.done(o)
				now = time.Now()
				continue
			}
		}
		req := newCall(w.base, w.putHeader, http.MethodPost, txnPath, "", w.txnBody())
		start := time.Now()
		status, _, body, ok := w.send(req)
		now = time.Now()
		o := outcomeOf(status, ok)
		if ok && status == http.StatusOK {
			o = w.txnAnswer(body)
		}
		w.stale = w.stale || uncertain(o)
		w.writes.add(o, status, now.Sub(start))
		ctl.done(o)
	}
}

// txnAnswer reads a 200's answer: {"index":I,"revision":R,"succeeded":B,
// "results":[...]}. A success moves the client's revision to R, where it
// wrote its first key; a failed compare moves it to where the failure
// branch found the key.
func (w *worker) txnAnswer(body []byte) outcome {
	c := jsonCursor{b: body}
	var (
		rev                uint64
		succeeded, decided bool
	)
	if c.consume('{') {
		for f, more := c.field(); more; f, more = c.field() {
			switch string(f) {
			case "revision":
				rev = c.uint()
			case "succeeded":
				succeeded, decided = c.boolean(), true
			default:
				c.skip()
			}
		}
	}
	switch {
	case !c.end() || !decided || rev == 0:
		return outcomeBadReply
	case succeeded:
		w.rev = rev
		return outcomeOK
	case !w.compare:
		// Nothing was compared: only a broken node fails it.
		return outcomeBadReply
	}
	var failed struct {
		Results []struct {
			KVs []struct {
				ModRevision uint64 `json:"mod_revision"`
			} `json:"kvs"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &failed); err != nil || len(failed.Results) != 1 || len(failed.Results[0].KVs) > 1 {
		w.stale = true
		return outcomeConflict
	}
	w.rev = 0 // the key is absent
	if kvs := failed.Results[0].KVs; len(kvs) == 1 {
		w.rev = kvs[0].ModRevision
	}
	return outcomeConflict
}

// txnBody is the JSON of one transaction, a fresh buffer each time (the
// transport may still read a body after it answered):
//
//	{"compare":[{"key":K0,"target":"mod_revision","op":"=","number":R}],
//	 "success":[{"op":"put","key":K0,"value":V},…],
//	 "failure":[{"op":"get","key":K0}]}
//
// V is the value with the client's sequence number written over its start;
// the value alphabet needs no escaping.
func (w *worker) txnBody() []byte {
	size := 64 + len(w.txnKeys)*(len(w.value)+32)
	for _, k := range w.txnKeys {
		size += len(k)
	}
	b := make([]byte, 0, size+2*len(w.txnKeys[0])+96)
	b = append(b, '{')
	if w.compare {
		b = append(b, `"compare":[{"key":`...)
		b = append(b, w.txnKeys[0]...)
		b = append(b, `,"target":"mod_revision","op":"=","number":`...)
		b = strconv.AppendUint(b, w.rev, 10)
		b = append(b, `}],`...)
	}
	b = append(b, `"success":[`...)
	var digits [20]byte
	stamp := strconv.AppendUint(digits[:0], w.seq, 10)
	w.seq++
	for i, k := range w.txnKeys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"op":"put","key":`...)
		b = append(b, k...)
		b = append(b, `,"value":"`...)
		start := len(b)
		b = append(b, w.value...)
		copy(b[start:], stamp)
		b = append(b, `"}`...)
	}
	b = append(b, ']')
	if w.compare {
		b = append(b, `,"failure":[{"op":"get","key":`...)
		b = append(b, w.txnKeys[0]...)
		b = append(b, `}]`...)
	}
	return append(b, '}')
}

// txnKeyJSON is the JSON of the client's keys: its put keys 0 to n-1,
// which no other client and no put run shares.
func txnKeyJSON(names keyNamer, client, n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		k, _ := json.Marshal(string(names.appendPutKey(nil, client, uint64(i))))
		keys[i] = k
	}
	return keys
}
