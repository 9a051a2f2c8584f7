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
	a := w.send(w.newCall(http.MethodPut, w.spacePath(w.cas), "", w.stamped(), header))
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

// txnAnswer reads a 200's answer. A success moves the client's revision to
// the transaction's; a failed compare, to where its failure branch (a get of
// the first key) found the key, so that the next one can succeed.
func (w *worker) txnAnswer(body []byte) outcome {
	var ans struct {
		Revision  uint64 `json:"revision"`
		Succeeded *bool  `json:"succeeded"`
		Results   []struct {
			KVs []struct {
				ModRevision uint64 `json:"mod_revision"`
			} `json:"kvs"`
		} `json:"results"`
	}
	switch err := json.Unmarshal(body, &ans); {
	case err != nil || ans.Succeeded == nil || ans.Revision == 0:
		return outcomeBadReply
	case *ans.Succeeded:
		w.rev = ans.Revision
		return outcomeOK
	case !w.cmp:
		return outcomeBadReply // nothing was compared: only a broken node fails it
	case len(ans.Results) != 1 || len(ans.Results[0].KVs) > 1:
		w.stale = true
		return outcomeConflict
	}
	w.rev = 0 // the key is absent
	if kvs := ans.Results[0].KVs; len(kvs) == 1 {
		w.rev = kvs[0].ModRevision
	}
	return outcomeConflict
}

// txnBody is the JSON of one transaction: a put of a fresh value into each
// of the client's keys and, with --compare, the compare and a get of the
// first key as the failure branch.
func (w *worker) txnBody() []byte {
	type step struct {
		Op    string  `json:"op"`
		Key   string  `json:"key"`
		Value *string `json:"value,omitempty"`
	}
	type compare struct {
		Key    string `json:"key"`
		Target string `json:"target"`
		Op     string `json:"op"`
		Number uint64 `json:"number"`
	}
	var body struct {
		Compare []compare `json:"compare,omitempty"`
		Success []step    `json:"success"`
		Failure []step    `json:"failure,omitempty"`
	}
	value := string(w.stamped())
	for _, k := range w.txn {
		body.Success = append(body.Success, step{"put", k, &value})
	}
	if w.cmp {
		body.Compare = []compare{{w.txn[0], "mod_revision", "=", w.rev}}
		body.Failure = []step{{Op: "get", Key: w.txn[0]}}
	}
	b, _ := json.Marshal(body) // of strings and numbers: it cannot fail
	return b
}

// stamped is a fresh copy of the value with the client's sequence number
// written over its start: the transport may still read a request's body
// after it returned an answer, so no buffer is reused.
func (w *worker) stamped() []byte {
	v := append([]byte(nil), w.value...)
	copy(v, strconv.AppendUint(nil, w.seq, 10))
	w.seq++
	return v
}
