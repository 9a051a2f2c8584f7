package faults

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// FinalRead is what a read of a key saw once the cluster had healed. Rev
// is its ETag, the key's mod_revision (0: absent, or not read).
type FinalRead struct {
	Value string
	Found bool
	Rev   uint64
}

func (f FinalRead) String() string {
	if !f.Found {
		return "absent"
	}
	if f.Rev == 0 {
		return fmt.Sprintf("%q", f.Value)
	}
	return fmt.Sprintf("%q@%d", f.Value, f.Rev)
}

// satisfies says whether the final read f shows what want demands: the
// same value, and the same revision when want names one (the revision an
// acknowledged write answered: a write lost and redone by another write of
// the same value would have another).
func (f FinalRead) satisfies(want FinalRead) bool {
	return f.Found == want.Found && f.Value == want.Value && (want.Rev == 0 || f.Rev == want.Rev)
}

// Loss is an acknowledged write the final state does not show.
type Loss struct {
	Key string
	// Want is what the key must hold: the value of the acknowledged put
	// (or successful CAS or transaction), with the revision its answer
	// gave, or absent after an acknowledged delete.
	Want FinalRead
	// Got is what the final read saw; meaningless when Missing.
	Got FinalRead
	// Missing says the final reads did not cover the key at all.
	Missing bool
	// Client, Call and Return identify the acknowledged write.
	Client       int
	Call, Return time.Duration
}

func (l Loss) String() string {
	got := l.Got.String()
	if l.Missing {
		got = "no final read"
	}
	return fmt.Sprintf("key %q: client %d's write acknowledged at %v wants %s, final state has %s",
		l.Key, l.Client, l.Return, l.Want, got)
}

// LostWrites checks durability against final, the state read after healing.
// A write counts only when it is the last word on its key: it was
// acknowledged and every other write of the key that may have taken effect
// (acknowledged or unknown; a conditional write refused with a 412 did not)
// returned before it was invoked, so no order can put anything after it.
// Such a put, successful CAS or transaction must still be readable with its
// value and the revision it answered; such a delete must have left the key
// absent (a key that comes back is a lost delete). Writes racing with other
// writes are left to the linearizability check. Losses are sorted by key.
func LostWrites(rec *Recorder, final map[string]FinalRead) []Loss {
	return lostWrites(rec.Ops(), final)
}

func lostWrites(ops []Op, final map[string]FinalRead) []Loss {
	writes := make(map[string][]Op)
	for _, op := range ops {
		if mayHaveWritten(op) {
			writes[op.Input.Key] = append(writes[op.Input.Key], op)
		}
	}
	var losses []Loss
	for key, ws := range writes {
		last, ok := lastWord(ws)
		if !ok {
			continue
		}
		want := FinalRead{}
		if last.Input.Kind.leavesPresent() {
			want = FinalRead{Value: last.Input.Value, Found: true, Rev: last.Output.Rev}
		}
		got, read := final[key]
		if read && got.satisfies(want) {
			continue
		}
		losses = append(losses, Loss{
			Key: key, Want: want, Got: got, Missing: !read,
			Client: last.Client, Call: last.Call, Return: last.Return,
		})
	}
	slices.SortFunc(losses, func(a, b Loss) int { return strings.Compare(a.Key, b.Key) })
	return losses
}

// mayHaveWritten says whether op may have changed its key: a write that
// was neither certainly refused before it was proposed (failed) nor
// refused for its condition.
func mayHaveWritten(op Op) bool {
	return op.Input.Kind.isWrite() && op.Status != StatusFailed && !(op.Status == StatusOK && op.Output.Refused)
}

// lastWord finds the acknowledged write of one key that every other
// possibly-effective write of the key precedes in real time, if there is one.
func lastWord(ws []Op) (Op, bool) {
	for i, w := range ws {
		if w.Status != StatusOK {
			continue
		}
		last := true
		for j, other := range ws {
			// An unknown write never returned, so it may land after w
			// whatever its recorded return time says.
			if j != i && (other.Status != StatusOK || other.Return >= w.Call) {
				last = false
				break
			}
		}
		if last {
			return w, true
		}
	}
	return Op{}, false
}
