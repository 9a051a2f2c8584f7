package apply

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftkv/node/kv/store"
	"github.com/raftkv/node/messages"
)

// ErrInvalidUTF8 is returned for a write whose key or value is not valid
// UTF-8 in the raftexample format. raftexample's snapshots are JSON, and
// encoding/json replaces invalid UTF-8 with U+FFFD, so a member restored from
// a snapshot would hold other bytes than one that applied the log. Nothing
// was proposed.
var ErrInvalidUTF8 = errors.New("key and value must be valid UTF-8 in the raftexample format")

// raftexampleEntry is the gob value of an entry: raftexample's own
// kv{Key, Val string}, plus ID.
//
// ID is the request id of the proposing node, so that it can answer the
// client whose entry this is. gob matches fields by name and skips those the
// receiver lacks, so raftexample reads these entries as its own; entries its
// members write have no ID, which decodes as 0 and settles no request (request
// ids are never 0).
//
// A request is settled by its ID only, never by finding its key and value in
// an applied entry: another member may propose the same write, and its entry
// would then acknowledge ours while ours is still in flight — and ours could
// still land later, over a value written in between.
type raftexampleEntry struct {
	Key string
	Val string
	ID  uint64
}

// raftexampleFormat is FormatRaftexample.
type raftexampleFormat struct{}

// Batches is false: a raftexample member reads one key and value per entry.
func (raftexampleFormat) Batches() bool { return false }

func (raftexampleFormat) Encode(c Command) ([]byte, error) {
	switch c.Op {
	case OpPut:
		if c.Lease != 0 {
			// Its entries have no room for one, and its members would
			// keep the key for ever.
			return nil, fmt.Errorf("%w: raftexample has no leases", messages.ErrUnsupported)
		}
	case OpLeaseGrant, OpLeaseRevoke, OpLeaseCheckpoint:
		return nil, fmt.Errorf("%w: raftexample has no leases", messages.ErrUnsupported)
	case OpDelete:
		return nil, fmt.Errorf("%w: raftexample has no delete", messages.ErrUnsupported)
	case OpTxn:
		return nil, fmt.Errorf("%w: raftexample has no transactions or conditional writes", messages.ErrUnsupported)
	case OpCompact:
		// Its members keep no history, and would apply the entry as a
		// key.
		return nil, fmt.Errorf("%w: raftexample has no history to compact", messages.ErrUnsupported)
	default:
		// Its members would apply a publication of client URLs as a key.
		return nil, fmt.Errorf("%w: raftexample entries carry only keys and values", messages.ErrUnsupported)
	}
	if err := CheckUTF8(c.Key, c.Value); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	// A new encoder per entry: raftexample reads every entry with a new
	// decoder, so each must be a whole stream, type definition included.
	if err := gob.NewEncoder(&buf).Encode(raftexampleEntry{Key: c.Key, Val: string(c.Value), ID: c.ReqID}); err != nil {
		return nil, fmt.Errorf("gob-encode entry: %w", err)
	}
	return buf.Bytes(), nil
}

// Decode reads one gob value from the front of data and ignores what
// follows, as raftexample does: members of one cluster must apply an entry
// alike, whichever implementation they run.
func (raftexampleFormat) Decode(data []byte) (Command, error) {
	var e raftexampleEntry
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&e); err != nil {
		return Command{}, fmt.Errorf("%w: gob: %w", ErrBadCommand, err)
	}
	return Command{Op: OpPut, ReqID: e.ID, Key: e.Key, Value: []byte(e.Val)}, nil
}

// SnapshotData writes exactly what raftexample's getSnapshot writes, so
// that its members can restore our snapshots: json.Marshal of a
// map[string]string, whose keys encoding/json sorts. raftexample keeps its
// whole state in memory, so a cluster it belongs to is small enough for
// this map.
func (raftexampleFormat) SnapshotData(tx *bolt.Tx) ([]byte, error) {
	m := make(map[string]string)
	err := store.ForEach(tx, func(k, v []byte) error {
		m[string(k)] = string(v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("json-encode snapshot: %w", err)
	}
	return b, nil
}

// Restore reads a raftexample snapshot. Its data has no member list, so the
// members are the ids of the ConfState; their peer URLs are whatever this
// member knew, "" for the others (the raft actor keeps a URL it already has).
func (raftexampleFormat) Restore(st *store.Store, data []byte, rev uint64, cs *raftpb.ConfState, known map[uint64]string) error {
	if len(data) > 0 {
		var m map[string]string
		if err := json.Unmarshal(data, &m); err != nil {
			return fmt.Errorf("%w: json: %w", store.ErrBadSnapshot, err)
		}
		for k, v := range m {
			if err := st.Load(k, []byte(v), rev); err != nil {
				return err
			}
		}
	}
	for _, ids := range [][]uint64{cs.GetVoters(), cs.GetLearners(), cs.GetVotersOutgoing(), cs.GetLearnersNext()} {
		for _, id := range ids {
			if err := st.AddMember(id, known[id]); err != nil {
				return err
			}
		}
	}
	return nil
}

// CheckUTF8 refuses a write the raftexample format cannot keep intact; the
// HTTP API refuses it before proposing, as the kv actor would.
func CheckUTF8(key string, value []byte) error {
	if !utf8.ValidString(key) {
		return fmt.Errorf("%w: the key (%d bytes) is not", ErrInvalidUTF8, len(key))
	}
	if !utf8.Valid(value) {
		return fmt.Errorf("%w: the value is not", ErrInvalidUTF8)
	}
	return nil
}
