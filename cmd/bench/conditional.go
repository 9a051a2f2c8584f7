package main

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// The conditional writes, cas and txn, name the revision the client last
// saw its key at. After an answer that leaves it uncertain (a 504, a failed
// connection) the client reads the key's ETag again before its next write,
// so that a 412 or a failed compare is never the echo of its own write.

// casOp PUTs the client's key with If-Match: "<the revision it last saw the
// key at>", a new value each time, and takes the next revision from the
// answer: a 200's "revision", a 412's ETag.
func (w *worker) casOp() (*opStats, outcome, int, time.Duration) {
	if w.stale {
		if o, status := w.readRevision(); o != outcomeOK {
			return w.writes, o, status, 0
		}
	}
	header := http.Header{"User-Agent": userAgent, "Content-Type": headers[http.MethodPut]["Content-Type"],
		"If-Match": {`"` + strconv.FormatUint(w.rev, 10) + `"`}}
	// A fresh value: the transport may still read a request's body after
	// it returned an answer, so the buffer is never reused.
	value := append([]byte(nil), w.value...)
	copy(value, strconv.AppendUint(make([]byte, 0, 20), w.seq, 10))
	w.seq++
	a := w.send(w.newCall(http.MethodPut, w.spacePath(w.cas), "", value, header))
	var o outcome
	if a.err == nil && a.status == http.StatusPreconditionFailed {
		o = outcomeConflict
		if rev, ok := etagRevision(a.header); ok {
			w.rev = rev
		} else {
			w.stale = true // the key is gone: reading it will say so, as a 404
		}
	} else {
		rev, ok := topUint(a.body, "revision")
		if o = a.outcome(a.status == http.StatusOK && ok && rev > 0); o == outcomeOK {
			w.rev = rev
		}
	}
	w.stale = w.stale || o.uncertain()
	if o == outcomeConflict && w.refused != nil {
		return w.refused, outcomeOK, a.status, a.lat // the expected loss of a race
	}
	return w.writes, o, a.status, a.lat
}

// readRevision reads the ETag of the client's key (cas) or of its first key
// (txn, where an absent key is at revision 0 for the compare). After
// outcomeOK the revision is known again.
func (w *worker) readRevision() (outcome, int) {
	var path string
	if w.cmd == cmdTxn {
		path = w.putPath(0)
	} else {
		path = w.spacePath(w.cas)
	}
	a := w.send(w.newCall(http.MethodGet, path, "", nil, nil))
	rev, ok := etagRevision(a.header)
	if a.err == nil && a.status == http.StatusNotFound && w.cmd == cmdTxn {
		rev = 0
	} else if o := a.outcome(a.status == http.StatusOK && ok); o != outcomeOK {
		return o, a.status
	}
	w.rev, w.stale = rev, false
	return outcomeOK, a.status
}

// etagRevision reads the revision of a strong ETag, "R".
func etagRevision(h http.Header) (uint64, bool) {
	v := h.Get("Etag")
	if len(v) < 3 || v[0] != '"' || v[len(v)-1] != '"' {
		return 0, false
	}
	rev, err := strconv.ParseUint(v[1:len(v)-1], 10, 64)
	return rev, err == nil && rev > 0
}

const txnPath = "/v1/txn"

// txnOp POSTs one transaction putting a new value into each of the
// client's --txn-ops keys. With --compare it is guarded by the first key's
// mod_revision being that of the client's last transaction, which only the
// client writes: it holds unless the node lost or misreported a write.
func (w *worker) txnOp() (*opStats, outcome, int, time.Duration) {
	if w.cmp && w.stale {
		if o, status := w.readRevision(); o != outcomeOK {
			return w.writes, o, status, 0
		}
	}
	a := w.send(w.newCall(http.MethodPost, txnPath, "", w.txnBody(), nil))
	o := a.outcome(false)
	if a.err == nil && a.status == http.StatusOK {
		o = w.txnAnswer(a.body)
	}
	w.stale = w.stale || o.uncertain()
	return w.writes, o, a.status, a.lat
}

// txnAnswer reads a 200's answer: {"index":I,"revision":R,"succeeded":B,
// "results":[...]}. A success moves the client's revision to R; a failed
// compare, to where its failure branch (a get of the first key) found the
// key, so that the next one can succeed.
func (w *worker) txnAnswer(body []byte) outcome {
	c := jsonCursor{b: body}
	rev, succeeded, decided := uint64(0), false, false
	for f := range c.fields() {
		switch string(f) {
		case "revision":
			rev = c.uint()
		case "succeeded":
			succeeded, decided = c.boolean()
		default:
			c.skip()
		}
	}
	switch {
	case !c.end() || !decided || rev == 0:
		return outcomeBadReply
	case succeeded:
		w.rev = rev
		return outcomeOK
	case !w.cmp:
		return outcomeBadReply // nothing was compared: only a broken node fails it
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
	b := append(make([]byte, 0, 160+3*len(w.txn[0])+len(w.txn)*(len(w.txn[0])+len(w.value)+32)), '{')
	if w.cmp {
		b = append(append(b, `"compare":[{"key":`...), w.txn[0]...)
		b = append(b, `,"target":"mod_revision","op":"=","number":`...)
		b = append(strconv.AppendUint(b, w.rev, 10), `}],`...)
	}
	b = append(b, `"success":[`...)
	var digits [20]byte
	stamp := strconv.AppendUint(digits[:0], w.seq, 10)
	w.seq++
	for i, k := range w.txn {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(append(append(b, `{"op":"put","key":`...), k...), `,"value":"`...)
		start := len(b)
		b = append(b, w.value...)
		copy(b[start:], stamp)
		b = append(b, `"}`...)
	}
	b = append(b, ']')
	if w.cmp {
		b = append(append(append(b, `,"failure":[{"op":"get","key":`...), w.txn[0]...), `}]`...)
	}
	return append(b, '}')
}

// txnKeyJSON is the JSON of the client's keys: its put keys 0 to n-1,
// which no other client and no put run shares.
func txnKeyJSON(names keyNamer, client, n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i], _ = json.Marshal(string(names.appendPutKey(nil, client, uint64(i))))
	}
	return keys
}
