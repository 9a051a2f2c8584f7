package apply

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftkv/node/kv/internal/wire"
	"github.com/raftkv/node/kv/store"
)

// Format is how a node's state machine spells its log entries and
// snapshots. Every member of a cluster must use the same one: the log and the
// snapshots are shared, and a member cannot apply an entry it cannot read.
type Format int

const (
	// FormatNative is this node's own format: a compact binary command per
	// entry, and a binary snapshot that also carries the member list and
	// the removed ids.
	FormatNative Format = 0
	// FormatRaftexample is the format of etcd's contrib/raftexample, so that
	// the node can join a cluster of unmodified raftexample members: an entry
	// is a gob-encoded key and value, a snapshot the JSON of the key-value
	// map. It has no delete, no leases, no transactions and no
	// compaction, and keys and values must be valid UTF-8.
	FormatRaftexample Format = 1
)

// ErrUnknownFormat is returned for a format name or value this package does
// not implement.
var ErrUnknownFormat = errors.New("unknown state machine format")

// ParseFormat parses the name a Format prints as: "native" or "raftexample".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "native":
		return FormatNative, nil
	case "raftexample":
		return FormatRaftexample, nil
	}
	return FormatNative, fmt.Errorf("%w %q: want native or raftexample", ErrUnknownFormat, s)
}

// String returns the name ParseFormat takes, or Format(n) for a value this
// package does not implement.
func (f Format) String() string {
	switch f {
	case FormatNative:
		return "native"
	case FormatRaftexample:
		return "raftexample"
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

// Codec is everything a Format decides for the kv actor and the applier.
// They hold one and never ask which format they have, so a format's rules
// stay in its own file.
type Codec interface {
	// Encode turns a client's command into entry data, or refuses a command
	// the format cannot express; a refused command is never proposed.
	Encode(c Command) ([]byte, error)
	// Decode parses the data of a normal entry (never empty). An error
	// wraps ErrBadCommand; the entry is then refused (refuse.go).
	Decode(data []byte) (Command, error)
	// SnapshotData is what a raft snapshot of the state carries inline,
	// read from tx, a read transaction at the snapshot's index: nothing in
	// the native format, whose db goes with the snapshot on its own
	// stream; the whole key-value map in raftexample's, whose members
	// restore from it. It runs on the snapshot encoder, not the kv actor.
	SnapshotData(tx *bolt.Tx) ([]byte, error)
	// Restore writes inline snapshot data (raftexample's, or a native
	// snapshot of the previous layout) into st, which is empty, every key
	// at revision rev. A format whose snapshots lack the member list takes
	// the members from cs, with the peer URLs known for them (known is not
	// modified). Errors wrap ErrBadSnapshot.
	Restore(st *store.Store, data []byte, rev uint64, cs *raftpb.ConfState, known map[uint64]string) error
	// Batches tells whether several commands may share one entry (decode
	// then returns an OpBatch command whose value is the batch body).
	Batches() bool
}

// Codec returns f's implementation. Each is an empty struct, so holding one
// in the interface allocates nothing.
func (f Format) Codec() (Codec, error) {
	switch f {
	case FormatNative:
		return nativeFormat{}, nil
	case FormatRaftexample:
		return raftexampleFormat{}, nil
	}
	return nil, fmt.Errorf("%w: %v", ErrUnknownFormat, f)
}

// nativeFormat is FormatNative: command.go and batch.go.
type nativeFormat struct{}

func (nativeFormat) Encode(c Command) ([]byte, error) { return c.encode(), nil }

func (nativeFormat) Decode(data []byte) (Command, error) {
	if len(data) > 0 && Op(data[0]) == OpBatch {
		id, n := binary.Uvarint(data[1:])
		if n <= 0 || n != wire.UvarintLen(id) {
			return Command{}, fmt.Errorf("%w: batch id", ErrBadCommand)
		}
		return Command{Op: OpBatch, ReqID: id, Value: data[1+n:]}, nil
	}
	return decodeCommand(data)
}

func (nativeFormat) Batches() bool { return true }

func (nativeFormat) SnapshotData(*bolt.Tx) ([]byte, error) { return nil, nil }

// restore reads a snapshot of the previous layout (legacy.go), for a data
// dir that has no db yet; it ignores cs and known: such a snapshot carries
// the member list with its peer URLs, which is exact where a ConfState is
// not.
func (nativeFormat) Restore(st *store.Store, data []byte, rev uint64, _ *raftpb.ConfState, _ map[uint64]string) error {
	return restoreLegacy(st, data, rev)
}
