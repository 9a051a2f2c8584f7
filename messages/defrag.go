package messages

import "errors"

// Defragment asks the kv actor to rewrite the member's db compactly: the
// file keeps its size after deletes (bbolt reuses free pages but never
// gives them back), and a copy of what it holds is smaller. The copy is
// made from a read transaction while the member goes on serving; then it
// replaces the file and the entries applied meanwhile are applied to it
// again. Sender: a client API (RequestFuture, with a timeout long enough
// for the copy). Receiver: kv actor, which answers Defragmented or an
// error.
type Defragment struct{}

// Defragmented answers Defragment: the db's size before and after, as
// Status reports it (bbolt grows the file itself 16 MiB at a time, its
// AllocSize, so a small db's file does not shrink below that).
type Defragmented struct {
	SizeBefore, SizeAfter int64
}

// ErrDefragAborted is the answer to a Defragment that could not finish
// safely: a snapshot replaced the state, a membership change was applied
// during the copy, or more was applied meanwhile than the copy may replay.
// Nothing changed; ask again.
var ErrDefragAborted = errors.New("defragmentation aborted; the db is as it was")
