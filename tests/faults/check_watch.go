package faults

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// WatchRecord is what one member's watcher received of the revisions in
// (After, Through]: every message of those revisions, in the order they
// came. The watcher received every event through Through (it said so by
// an event, a progress or an end).
type WatchRecord struct {
	Member  uint64
	Door    string // the watcher's API, "SSE" or "gRPC", for reports ("": not said)
	After   uint64
	Through uint64
	Msgs    []WatchMsg
}

// WatchViolation is one way a watcher's record breaks the watch contract.
type WatchViolation struct {
	Member   uint64 // whose record; for a divergence, the first of the two
	Door     string // the record's watcher's API ("": not said)
	Revision uint64
	What     string
	// Context shows the neighbouring messages of the record(s) concerned.
	Context string
}

func (v WatchViolation) String() string {
	return fmt.Sprintf("%s, revision %d: %s\n%s", watcherName(v.Member, v.Door), v.Revision, v.What, v.Context)
}

// watcherName names a record's watcher: its member, and its API if said.
func watcherName(member uint64, door string) string {
	if door == "" {
		return fmt.Sprintf("member %d", member)
	}
	return fmt.Sprintf("member %d (%s)", member, door)
}

// CheckWatches checks the watchers' records of one span of revisions
// against the history ops of the writes made in it (a round's, with any
// write the test made itself), as the watch contract promises
// (docs/api.md, "Watch"):
//
//   - order: each record's revisions strictly increase, from above After:
//     no revision repeated, none out of order, none at or below what a
//     progress or an end event said was complete, each revision's events
//     in one message, every event of the message's revision, no key twice
//     in one revision; and each key's events tell a possible story (a put's
//     create_revision and version follow from the key's previous event, a
//     delete removes a present key);
//   - completeness: every acknowledged write (a put, a delete that
//     deleted, a successful conditional write or transaction) is in every
//     record, at the revision it answered, as a put of its value or a
//     delete;
//   - exactly once: no value appears at two revisions (the workers write
//     each value once);
//   - soundness: every event is a write of the history that may have
//     happened: a put of a value some write of the key wrote, attached to
//     the lease that write named, and not one recorded as failed or
//     refused (an unknown one may appear, once); a delete at the revision
//     of an acknowledged delete (a lease's revocation, OpRevoke, that
//     deleted the key is one), or one of no more such events than there
//     are unknown deletes of the key;
//   - agreement: over the revisions every record covers, all records
//     hold the same messages.
//
// It returns the violations found, by record, then those of agreement.
func CheckWatches(ops []Op, records []WatchRecord) []WatchViolation {
	h := newWatchHistory(ops)
	var vs []WatchViolation
	for _, r := range records {
		vs = append(vs, checkOrder(r)...)
		vs = append(vs, h.checkComplete(r)...)
		vs = append(vs, h.checkSound(r)...)
	}
	return append(vs, checkAgreement(records)...)
}

// AcknowledgedWrites counts the writes of ops that CheckWatches demands in
// every record.
func AcknowledgedWrites(ops []Op) int { return len(newWatchHistory(ops).acked) }

// watchHistory indexes the writes of a history for the watch checks.
type watchHistory struct {
	// acked are the writes that must be in every record.
	acked []Op
	// writer is the write of each (key, value) a put-like write wrote;
	// the workers never write one value twice.
	writer map[keyValue]Op
	// deleted is the acknowledged deletes that deleted, by revision and
	// key; unknownDeletes counts, by key, the deletes of unknown outcome.
	deleted        map[revKey]Op
	unknownDeletes map[string]int
}

type keyValue struct{ key, value string }

type revKey struct {
	rev uint64
	key string
}

func newWatchHistory(ops []Op) *watchHistory {
	h := &watchHistory{writer: make(map[keyValue]Op), deleted: make(map[revKey]Op), unknownDeletes: make(map[string]int)}
	for _, op := range ops {
		in := op.Input
		if !in.Kind.isWrite() {
			continue
		}
		if in.Kind.leavesPresent() {
			h.writer[keyValue{in.Key, in.Value}] = op
		}
		if !mayHaveWritten(op) {
			continue
		}
		switch {
		case op.Status == StatusUnknown && !in.Kind.leavesPresent():
			h.unknownDeletes[in.Key]++
		case op.Status != StatusOK:
		case in.Kind.leavesPresent():
			h.acked = append(h.acked, op)
		case op.Output.Found:
			// A delete that deleted; "deleted":0 wrote nothing.
			h.acked = append(h.acked, op)
			h.deleted[revKey{op.Output.Rev, in.Key}] = op
		}
	}
	return h
}

// describeWrite names an operation of the history for a report.
func describeWrite(op Op) string {
	s := fmt.Sprintf("client %d's %s", op.Client, describeKVOperation(op.Input, op.Output))
	switch op.Status {
	case StatusOK:
		if op.Output.Refused {
			s += " (refused)"
		}
	default:
		s += fmt.Sprintf(" (%s: %s)", op.Status, op.Cause)
	}
	return s
}

// around shows the messages of msgs around index i: two on each side.
func around(msgs []WatchMsg, i int) string {
	var b strings.Builder
	for j := max(0, i-2); j < min(len(msgs), i+3); j++ {
		mark := "   "
		if j == i {
			mark = ">> "
		}
		fmt.Fprintf(&b, "  %s%v\n", mark, msgs[j])
	}
	if b.Len() == 0 {
		return "  (no messages)\n"
	}
	return b.String()
}

// aroundRev shows the messages of msgs around revision rev, where it is
// or would be.
func aroundRev(msgs []WatchMsg, rev uint64) string {
	i, found := slices.BinarySearchFunc(msgs, rev, func(m WatchMsg, r uint64) int {
		return cmp.Compare(m.Revision, r)
	})
	if found {
		return around(msgs, i)
	}
	// Where it would be: show its would-be neighbours, without a mark.
	var b strings.Builder
	fmt.Fprintf(&b, "  (no message at %d; its neighbours:)\n", rev)
	for j := max(0, i-2); j < min(len(msgs), i+2); j++ {
		fmt.Fprintf(&b, "     %v\n", msgs[j])
	}
	return b.String()
}

// keyStory is a key as its events in a record left it.
type keyStory struct {
	present bool
	create  uint64
	version uint64
}

// checkOrder checks a record on its own: order, one message per revision,
// events of the message's revision, each key's story.
func checkOrder(r WatchRecord) []WatchViolation {
	var vs []WatchViolation
	bad := func(i int, what string, args ...any) {
		vs = append(vs, WatchViolation{Member: r.Member, Door: r.Door, Revision: r.Msgs[i].Revision,
			What: fmt.Sprintf(what, args...), Context: around(r.Msgs, i)})
	}
	prev := r.After
	stories := make(map[string]keyStory)
	for i, m := range r.Msgs {
		switch {
		case m.Revision == prev:
			bad(i, "revision %d received twice", m.Revision)
		case m.Revision < prev:
			bad(i, "revision %d received after %d: out of order", m.Revision, prev)
		case m.Revision <= m.Covered:
			bad(i, "revision %d received when the stream had said it was complete through %d (by a progress or an end event)", m.Revision, m.Covered)
		case m.Revision > r.Through:
			bad(i, "revision %d beyond the record's end, %d", m.Revision, r.Through)
		}
		prev = max(prev, m.Revision)
		if len(m.Events) == 0 {
			bad(i, "a message with no events")
		}
		seen := make(map[string]bool)
		for _, e := range m.Events {
			if seen[e.Key] {
				bad(i, "key %q twice in one revision", e.Key)
			}
			seen[e.Key] = true
			if e.ModRevision != m.Revision {
				bad(i, "an event of mod_revision %d in the message of revision %d: %v", e.ModRevision, m.Revision, e)
			}
			if what := stories[e.Key].follow(e, m.Revision); what != "" {
				bad(i, "key %q: %s: %v", e.Key, what, e)
			}
			stories[e.Key] = stories[e.Key].after(e, m.Revision)
		}
	}
	return vs
}

// follow says what is wrong with e as the next event of the key, "" if
// nothing. A key's first event in the record is taken as it is, within
// what it shows of itself: the record may begin after the key's creation.
func (st keyStory) follow(e WatchEvent, rev uint64) string {
	first := st.version == 0 && !st.present && st.create == 0
	switch {
	case e.Type == "delete" && !st.present && !first:
		return "a delete of an absent key"
	case e.Type == "delete":
		return ""
	case e.Version == 0 || e.CreateRevision == 0 || e.CreateRevision > rev:
		return "a put with impossible counters"
	case (e.CreateRevision == rev) != (e.Version == 1):
		return "a put that creates the key must be its version 1, and only it"
	case first:
		return ""
	case !st.present && e.CreateRevision != rev:
		return "a put of an absent key that does not create it"
	case st.present && (e.CreateRevision != st.create || e.Version != st.version+1):
		return fmt.Sprintf("a put after create_revision %d version %d", st.create, st.version)
	}
	return ""
}

func (st keyStory) after(e WatchEvent, rev uint64) keyStory {
	if e.Type == "delete" {
		// create 1 marks the key as seen, absent now.
		return keyStory{create: 1}
	}
	return keyStory{present: true, create: e.CreateRevision, version: e.Version}
}

// checkComplete checks that every acknowledged write is in the record, at
// its revision, as it was written.
func (h *watchHistory) checkComplete(r WatchRecord) []WatchViolation {
	var vs []WatchViolation
	byRev := make(map[uint64]WatchMsg)
	for _, m := range r.Msgs {
		if _, dup := byRev[m.Revision]; !dup {
			byRev[m.Revision] = m
		}
	}
	for _, op := range h.acked {
		rev, key := op.Output.Rev, op.Input.Key
		miss := func(what string, args ...any) {
			vs = append(vs, WatchViolation{Member: r.Member, Door: r.Door, Revision: rev,
				What:    fmt.Sprintf(what, args...) + ": " + describeWrite(op),
				Context: aroundRev(r.Msgs, rev)})
		}
		if rev <= r.After || rev > r.Through {
			miss("an acknowledged write outside the record's revisions (%d, %d]", r.After, r.Through)
			continue
		}
		var got *WatchEvent
		for i, e := range byRev[rev].Events {
			if e.Key == key {
				got = &byRev[rev].Events[i]
			}
		}
		switch {
		case got == nil:
			miss("an acknowledged write is missing")
		case op.Input.Kind.leavesPresent() && (got.Type != "put" || got.Value != op.Input.Value):
			miss("at its revision the key's event is %v, not the acknowledged write", *got)
		case !op.Input.Kind.leavesPresent() && got.Type != "delete":
			miss("at its revision the key's event is %v, not the acknowledged delete", *got)
		}
	}
	return vs
}

// checkSound checks that every event of the record is a write of the
// history that may have happened, at most once.
func (h *watchHistory) checkSound(r WatchRecord) []WatchViolation {
	var vs []WatchViolation
	bad := func(i int, what string, args ...any) {
		vs = append(vs, WatchViolation{Member: r.Member, Door: r.Door, Revision: r.Msgs[i].Revision,
			What: fmt.Sprintf(what, args...), Context: around(r.Msgs, i)})
	}
	seenAt := make(map[keyValue]uint64)
	unexplained := make(map[string]int) // deletes no acknowledged one explains, by key
	for i, m := range r.Msgs {
		for _, e := range m.Events {
			if e.Type == "delete" {
				if _, ok := h.deleted[revKey{m.Revision, e.Key}]; ok {
					continue
				}
				unexplained[e.Key]++
				if n := h.unknownDeletes[e.Key]; unexplained[e.Key] > n {
					bad(i, "a delete of %q that no delete of the history explains (no acknowledged one at this revision; %d of unknown outcome, %d such events)",
						e.Key, n, unexplained[e.Key])
				}
				continue
			}
			kv := keyValue{e.Key, e.Value}
			if at, ok := seenAt[kv]; ok {
				bad(i, "%q=%q again, first seen at revision %d", e.Key, e.Value, at)
				continue
			}
			seenAt[kv] = m.Revision
			op, ok := h.writer[kv]
			switch {
			case !ok:
				bad(i, "%q=%q, which no write of the history wrote", e.Key, e.Value)
			case op.Status == StatusFailed:
				bad(i, "%q=%q, whose write was recorded as failed: %s", e.Key, e.Value, describeWrite(op))
			case op.Status == StatusOK && op.Output.Refused:
				bad(i, "%q=%q, whose write was refused: %s", e.Key, e.Value, describeWrite(op))
			case op.Status == StatusOK && op.Output.Rev != m.Revision:
				bad(i, "%q=%q at another revision than its write answered: %s", e.Key, e.Value, describeWrite(op))
			case op.Input.Lease != e.Lease:
				bad(i, "%q=%q attached to lease %d, its write named lease %d: %s", e.Key, e.Value, e.Lease, op.Input.Lease, describeWrite(op))
			}
		}
	}
	return vs
}

// checkAgreement checks that the records hold the same messages over the
// revisions they all cover, and reports the first divergence of each
// record from the first one.
func checkAgreement(records []WatchRecord) []WatchViolation {
	if len(records) < 2 {
		return nil
	}
	lo, hi := records[0].After, records[0].Through
	for _, r := range records[1:] {
		lo, hi = max(lo, r.After), min(hi, r.Through)
	}
	span := func(r WatchRecord) []WatchMsg {
		var in []WatchMsg
		for _, m := range r.Msgs {
			if m.Revision > lo && m.Revision <= hi {
				in = append(in, m)
			}
		}
		return in
	}
	base := span(records[0])
	var vs []WatchViolation
	for _, r := range records[1:] {
		other := span(r)
		i := 0
		for i < len(base) && i < len(other) && base[i].sameEvents(other[i]) {
			i++
		}
		if i == len(base) && i == len(other) {
			continue
		}
		var rev uint64
		var what string
		switch {
		case i == len(other) || (i < len(base) && base[i].Revision < other[i].Revision):
			rev = base[i].Revision
			what = fmt.Sprintf("%s has revision %d, %s has not", watcherName(records[0].Member, records[0].Door), rev, watcherName(r.Member, r.Door))
		case i == len(base) || base[i].Revision > other[i].Revision:
			rev = other[i].Revision
			what = fmt.Sprintf("%s has revision %d, %s has not", watcherName(r.Member, r.Door), rev, watcherName(records[0].Member, records[0].Door))
		default:
			rev = base[i].Revision
			pair := fmt.Sprintf("members %d and %d", records[0].Member, r.Member)
			if records[0].Door != "" || r.Door != "" {
				pair = watcherName(records[0].Member, records[0].Door) + " and " + watcherName(r.Member, r.Door)
			}
			what = fmt.Sprintf("%s diverge at revision %d: %v against %v", pair, rev, base[i], other[i])
		}
		vs = append(vs, WatchViolation{Member: records[0].Member, Door: records[0].Door, Revision: rev,
			What: fmt.Sprintf("over revisions (%d, %d] the watchers disagree: %s", lo, hi, what),
			Context: fmt.Sprintf("%s:\n%s%s:\n%s", watcherName(records[0].Member, records[0].Door), around(base, min(i, len(base)-1)),
				watcherName(r.Member, r.Door), around(other, min(i, len(other)-1)))})
	}
	return vs
}
