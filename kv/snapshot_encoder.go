package kv

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftkv/node/messages"
	"github.com/raftkv/node/metrics"
)

// encodeSnapshot asks the snapshot encoder to turn a frozen state into
// snapshot data for the snapshotter. Sender: the kv actor, every
// SnapshotCount applied entries, with at most one in flight.
type encodeSnapshot struct {
	index     uint64
	confState *raftpb.ConfState
	state     *frozenState
}

// snapshotEncoded tells the kv actor that the encoder no longer reads the
// frozen state it was given, so the next snapshot may be taken. err is nil
// when the data went to the snapshotter.
type snapshotEncoded struct {
	index uint64
	err   error
}

// snapshotEncoder is a child of the kv actor. Encoding 700,000 keys takes
// 200 ms or more; on the kv actor every apply and read would wait for it.
// Here the kv actor only waits for the freeze, which copies 256 pointers.
type snapshotEncoder struct {
	codec       stateFormat
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
	}()
	start := time.Now()
	data, err := e.codec.marshal(msg.state)
	e.m.SnapshotEncode.Observe(time.Since(start).Seconds())
	if err != nil {
		return fmt.Errorf("encode the state: %w", err)
	}
	ctx.Send(e.snapshotter, messages.CreateSnapshot{Index: msg.index, ConfState: msg.confState, Data: data})
	return nil
}
