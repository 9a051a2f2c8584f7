// Package kvtest holds what the state machine's tests in several layers
// share: builders of transaction operations and compares, and
// raftexample's own entry encoding. Only tests import it.
package kvtest

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"testing"

	"github.com/raftkv/node/messages"
)

// TxnPut, TxnDel, TxnDelRange, TxnGet and TxnRange build a transaction's
// operations.
func TxnPut(key, value string) messages.TxnOp {
	return messages.TxnOp{Type: messages.OpPut, Key: key, Value: []byte(value)}
}

// TxnDel: see TxnPut.
func TxnDel(key string) messages.TxnOp { return messages.TxnOp{Type: messages.OpDelete, Key: key} }

// TxnDelRange: see TxnPut.
func TxnDelRange(start, end string) messages.TxnOp {
	return messages.TxnOp{Type: messages.OpDelete, Key: start, End: end}
}

// TxnGet: see TxnPut.
func TxnGet(key string) messages.TxnOp { return messages.TxnOp{Type: messages.OpGet, Key: key} }

// TxnRange: see TxnPut.
func TxnRange(r messages.Range) messages.TxnOp {
	return messages.TxnOp{Type: messages.OpRange, Range: r}
}

// CmpNum compares one of a key's counters with n.
func CmpNum(key string, target messages.CompareTarget, op messages.CompareOp, n uint64) messages.Compare {
	return messages.Compare{Key: key, Target: target, Op: op, Number: n}
}

// CmpValue compares a key's value with v.
func CmpValue(key string, op messages.CompareOp, v string) messages.Compare {
	return messages.Compare{Key: key, Target: messages.CompareValue, Op: op, Value: []byte(v)}
}

// RaftexampleKV is raftexample's own kv type (contrib/raftexample/kvstore.go).
type RaftexampleKV struct {
	Key string
	Val string
}

// RaftexamplePropose encodes as raftexample's kvstore.Propose does.
func RaftexamplePropose(t testing.TB, k, v string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(RaftexampleKV{k, v}); err != nil {
		t.Fatalf("gob: %v", err)
	}
	return buf.Bytes()
}

// RaftexampleReadCommit decodes as raftexample's kvstore.readCommits does.
func RaftexampleReadCommit(data []byte) (RaftexampleKV, error) {
	var kv RaftexampleKV
	err := gob.NewDecoder(bytes.NewReader(data)).Decode(&kv)
	return kv, err
}

// EventReader is what reads the committed history: the store, and the
// kv package's State over it.
type EventReader interface {
	ReadEvents(from uint64, maxEvents int, fn func(messages.Event)) (through uint64, err error)
}

// ReadEventsAsync calls r.ReadEvents on a goroutine of its own, as the
// watch hub's streams do, and returns what it passed.
func ReadEventsAsync(r EventReader, from uint64, maxEvents int) ([]messages.Event, uint64, error) {
	type result struct {
		evs     []messages.Event
		through uint64
		err     error
	}
	done := make(chan result)
	go func() {
		var res result
		res.through, res.err = r.ReadEvents(from, maxEvents, func(e messages.Event) { res.evs = append(res.evs, e) })
		done <- res
	}()
	res := <-done
	return res.evs, res.through, res.err
}

// EventNames spells events as key@revision, a delete with a "-" before.
func EventNames(evs []messages.Event) string {
	var out []string
	for _, e := range evs {
		s := fmt.Sprintf("%s@%d", e.KV.Key, e.Revision())
		if e.Type == messages.EventDelete {
			s = "-" + s
		}
		out = append(out, s)
	}
	return fmt.Sprint(out)
}
