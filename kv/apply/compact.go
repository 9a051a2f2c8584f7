package apply

import (
	"encoding/binary"
	"fmt"

	"github.com/raftkv/node/messages"
)

// OpCompact compacts the history through a revision, as etcd's Compact
// does (messages.Compact). It names no key; its value is the revision, a
// uvarint in its shortest form and nothing after it, so that each command
// has one encoding:
//
//	OpCompact | request id | key length (0) | revision (> 0)
//
// Whether it applies is decided when applied, from the state alone
// (store.Store.Compact): at or below the compacted revision it is
// messages.ErrCompacted, past the store's revision
// messages.ErrFutureRevision, alike on every member. A compaction frees
// space, so the quota never refuses one.
const OpCompact Op = 10

// compactCommand is the compaction of the history through rev.
func compactCommand(rev uint64) Command {
	return Command{Op: OpCompact, Value: binary.AppendUvarint(nil, rev)}
}

// decodeCompact reads an OpCompact command's revision. Revision 0 names
// nothing to compact: ProposeCompact never proposes it.
func decodeCompact(c Command) (uint64, error) {
	rev, n, ok := minimalUvarint(c.Value)
	switch {
	case !ok:
		return 0, fmt.Errorf("%w: compaction: revision", ErrBadCommand)
	case rev == 0:
		return 0, fmt.Errorf("%w: compaction at revision 0", ErrBadCommand)
	case n != len(c.Value):
		return 0, fmt.Errorf("%w: compaction: %d trailing bytes", ErrBadCommand, len(c.Value)-n)
	}
	return rev, nil
}

// ProposeCompact is the command of a compaction through rev, on a member
// whose history is compacted through compacted (store.Store.Compacted). A
// rev at or below it is refused as applying it would refuse it: the
// compacted revision only grows, so the member would answer so when the
// entry applies (revision 0, below every compacted revision, is refused
// so too). Whether rev is past the store's revision is decided when
// applied: the revision moves meanwhile.
func ProposeCompact(rev, compacted uint64) (Command, error) {
	if rev <= compacted {
		return Command{}, &messages.CompactedError{Revision: rev, Compacted: compacted}
	}
	return compactCommand(rev), nil
}
