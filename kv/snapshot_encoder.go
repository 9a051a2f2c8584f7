package kv

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/messages"
	"github.com/raftkv/node/metrics"
)

// encodeSnapshot asks the snapshot encoder to build a snapshot's data from
// tx, a read transaction of the db at index, for the snapshotter. Sender:
// the kv actor, with at most one in flight. The encoder ends tx.
type encodeSnapshot struct {
	index     uint64
	confState *raftpb.ConfState
	tx        *bolt.Tx
}

// snapshotEncoded tells the kv actor that the encoder is done with its read
// transaction, so the next snapshot may be taken. err is nil when the data
// went to the snapshotter.
type snapshotEncoded struct {
	index uint64
	err   error
}

// snapshotEncoder is a child of the kv actor that builds the data of
// raftexample-format snapshots (the JSON of the whole map) from a read
// transaction, so that the kv actor goes on applying meanwhile; bbolt lets
// one writer and many readers work at once.
type snapshotEncoder struct {
	codec       apply.Codec
	snapshotter *actor.PID
	m           *metrics.Node
}

func (e *snapshotEncoder) Receive(ctx actor.Context) {
	msg, ok := ctx.Message().(encodeSnapshot)
	if !ok {
		return
	}
	err := e.encode(ctx, msg)
	ctx.Send(ctx.Parent(), snapshotEncoded{index: msg.index, err: err})
}

// encode recovers a panic of the codec, so that a bad encoder costs a
// snapshot instead of being restarted with the kv actor never told.
func (e *snapshotEncoder) encode(ctx actor.Context, msg encodeSnapshot) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic while encoding the state: %v", r)
		}
		if rerr := msg.tx.Rollback(); rerr != nil && err == nil {
			err = fmt.Errorf("end the snapshot's read transaction: %w", rerr)
		}
	}()
	start := time.Now()
	data, err := e.codec.SnapshotData(msg.tx)
	e.m.SnapshotEncode.Observe(time.Since(start).Seconds())
	if err != nil {
		return fmt.Errorf("encode the state: %w", err)
	}
	ctx.Send(e.snapshotter, messages.CreateSnapshot{Index: msg.index, ConfState: msg.confState, Data: data})
	return nil
}
