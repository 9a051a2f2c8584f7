package persistence

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// snapCRC is the checksum etcd's snap package writes and checks: CRC-32C.
var snapCRC = crc32.MakeTable(crc32.Castagnoli)

// writeSnapFile writes s as dir/<term>-<index>.snap in the format
// snap.Snapshotter reads: a snappb.Snapshot whose Data is the marshalled
// raftpb.Snapshot and whose Crc is that Data's CRC-32C. snap.SaveSnap builds
// the whole file in memory first, copying the state twice (into the
// raftpb.Snapshot encoding, then into the snappb one); for a state of a
// million keys that is two more copies of 100+ MB at every snapshot. This
// writes the same fields around s.Data instead, and fsyncs the file. Like
// SaveSnap, it writes nothing for an empty snapshot.
func writeSnapFile(dir string, s *raftpb.Snapshot) (err error) {
	if raft.IsEmptySnap(s) {
		return nil
	}
	// A failpoint (scripts/build-failpoints.sh); `return` fails the write.
	// gofail: var snapBeforeSave struct{}
	// return errors.New("failpoint snapBeforeSave")

	md := s.GetMetadata()
	meta, err := proto.Marshal(md)
	if err != nil {
		return fmt.Errorf("marshal snapshot metadata: %w", err)
	}
	// raftpb.Snapshot: field 1 data (bytes), field 2 metadata (message).
	dataHdr := binary.AppendUvarint([]byte{1<<3 | 2}, uint64(len(s.GetData())))
	metaHdr := binary.AppendUvarint([]byte{2<<3 | 2}, uint64(len(meta)))
	inner := len(dataHdr) + len(s.GetData()) + len(metaHdr) + len(meta)
	crc := crc32.Update(0, snapCRC, dataHdr)
	crc = crc32.Update(crc, snapCRC, s.GetData())
	crc = crc32.Update(crc, snapCRC, metaHdr)
	crc = crc32.Update(crc, snapCRC, meta)
	// snappb.Snapshot: field 1 crc (varint), field 2 data (bytes).
	outer := binary.AppendUvarint([]byte{1<<3 | 0}, uint64(crc))
	outer = binary.AppendUvarint(append(outer, 2<<3|2), uint64(inner))

	path := filepath.Join(dir, fmt.Sprintf("%016x-%016x.snap", md.GetTerm(), md.GetIndex()))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o666)
	if err != nil {
		return err // names the path: "open <path>: <why>"
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close %s: %w", path, cerr)
		}
		if err != nil {
			// A torn file must not be mistaken for a snapshot; the WAL
			// does not name it yet, so removing it loses nothing.
			err = errors.Join(err, os.Remove(path))
		}
	}()
	for _, p := range [][]byte{outer, dataHdr, s.GetData(), metaHdr, meta} {
		if _, err := f.Write(p); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	return nil
}
