package faults

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/raftkv/node/persistence"
)

// ErrNoWALRecord is returned by TearWAL when the newest WAL file holds no
// record to tear.
var ErrNoWALRecord = errors.New("faults: no WAL record to tear")

// Framing of etcd's WAL (storage/wal encoder.go and decoder.go): each record
// is a little-endian 64-bit length word, then the record padded to 8 bytes.
// The low 56 bits of the word are the unpadded length; when the top bit is
// set, the low 3 bits of the top byte are the padding. A zero word marks the
// end of the records in a file preallocated with zeros.
const (
	walFrameBytes = 8
	// walSectorBytes is the unit the decoder checks for a torn write: it
	// reads a record as torn only if one of its 512-byte-aligned pieces is
	// all zeros, the sign of a sector the disk never wrote.
	walSectorBytes = 512
)

// TearWAL makes the last record of the member's newest WAL file look like
// a write torn by a crash: its last n bytes, and at least the piece of it in
// its last disk sector, are zeroed, as they would be on a disk that got the
// record's first sectors but not its last. Zeroing fewer bytes (a few bytes
// in the middle of a sector) would not be a torn write but a corrupt
// record: etcd's decoder reports a CRC mismatch and refuses to repair it.
// The length word is never touched, so the decoder still finds the record.
// On restart the node must drop that record and keep the rest. The member
// must not be running.
func (m *Member) TearWAL(n int) error {
	if m.Running() {
		return fmt.Errorf("tear WAL of member %d: %w", m.ID, ErrRunning)
	}
	if n < 1 {
		return fmt.Errorf("tear WAL of member %d: n = %d, want at least 1", m.ID, n)
	}
	path, err := newestWAL(persistence.WALDir(m.DataDir))
	if err != nil {
		return fmt.Errorf("tear WAL of member %d: %w", m.ID, err)
	}
	if err := tearLastRecord(path, n); err != nil {
		return fmt.Errorf("tear WAL of member %d: %w", m.ID, err)
	}
	return nil
}

// newestWAL returns the WAL file with the highest sequence number; names
// are fixed-width hex, so that is the last in lexical order.
func newestWAL(dir string) (string, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil {
		return "", fmt.Errorf("list %s: %w", dir, err)
	}
	if len(names) == 0 {
		return "", fmt.Errorf("no WAL file in %s: %w", dir, os.ErrNotExist)
	}
	sort.Strings(names)
	return names[len(names)-1], nil
}

// walRecord is where one record's padded body lies in its file.
type walRecord struct{ start, end int64 }

// lastRecord walks the length words of a WAL file to its last record.
func lastRecord(f *os.File) (walRecord, error) {
	st, err := f.Stat()
	if err != nil {
		return walRecord{}, err
	}
	var (
		last  walRecord
		found bool
		word  [walFrameBytes]byte
		off   int64
	)
	for {
		_, err := f.ReadAt(word[:], off)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return walRecord{}, err
		}
		l := binary.LittleEndian.Uint64(word[:])
		if l == 0 {
			break
		}
		size, pad := int64(l&(1<<56-1)), int64(0)
		if l>>63 == 1 {
			pad = int64(l >> 56 & 0x7)
		}
		start := off + walFrameBytes
		if size == 0 || start+size+pad > st.Size() {
			return walRecord{}, fmt.Errorf("%s: record at %d claims %d bytes past the end", f.Name(), off, size)
		}
		last, found = walRecord{start: start, end: start + size + pad}, true
		off = last.end
	}
	if !found {
		return walRecord{}, fmt.Errorf("%s: %w", f.Name(), ErrNoWALRecord)
	}
	return last, nil
}

// tearLastRecord zeroes the tail of the last record of the WAL file at path:
// the last n bytes, extended back to the record's last sector boundary (or
// its start) so that the decoder sees an unwritten sector. That piece always holds
// data, not padding alone: records and sectors both start 8-byte aligned,
// so a record's data never ends on a sector boundary with padding after.
func tearLastRecord(path string, n int) error {
	return writeAtLastRecord(path, func(rec walRecord) (int64, []byte) {
		lastSector := (rec.end - 1) / walSectorBytes * walSectorBytes
		from := max(rec.start, min(rec.end-int64(n), lastSector))
		return from, make([]byte, rec.end-from)
	})
}

// writeAtLastRecord finds the last record of the WAL file at path, writes
// the bytes place chooses for it where place says, and fsyncs the file.
func writeAtLastRecord(path string, place func(walRecord) (at int64, data []byte)) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	rec, err := lastRecord(f)
	if err != nil {
		return err
	}
	at, data := place(rec)
	if _, err := f.WriteAt(data, at); err != nil {
		return fmt.Errorf("write %s at %d: %w", path, at, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

// AppendTornRecord makes the member's newest WAL file end as a crash during
// an append leaves it: after the last complete record comes the start of
// one more, whose length word and first bytes reached the disk and whose
// later sectors did not (they are zeros). That record was never fsynced, so
// the member never acknowledged it; on restart it must drop it and keep
// every complete record. TearWAL, which damages the last complete record,
// models something else: the disk losing a write it had confirmed. Raft
// cannot run on such a log (a member may have acknowledged the lost entry),
// and the node stops with an error instead. The member must not be running.
func (m *Member) AppendTornRecord() error {
	if m.Running() {
		return fmt.Errorf("append a torn WAL record for member %d: %w", m.ID, ErrRunning)
	}
	path, err := newestWAL(persistence.WALDir(m.DataDir))
	if err != nil {
		return fmt.Errorf("append a torn WAL record for member %d: %w", m.ID, err)
	}
	// A record claiming 2 sectors, of which only its first 64 bytes were
	// written: at least one whole 512-byte-aligned piece of it is zeros,
	// which the decoder reads as a torn write.
	const claimed, written = 2 * walSectorBytes, 64
	torn := make([]byte, walFrameBytes+claimed)
	binary.LittleEndian.PutUint64(torn, claimed)
	for i := range written {
		torn[walFrameBytes+i] = 0xa5
	}
	err = writeAtLastRecord(path, func(rec walRecord) (int64, []byte) { return rec.end, torn })
	if err != nil {
		return fmt.Errorf("append a torn WAL record for member %d: %w", m.ID, err)
	}
	return nil
}
