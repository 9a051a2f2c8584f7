package faults

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// FinalRead is what a read of a key saw once the cluster had healed.
type FinalRead struct {
	Value string
	Found bool
}

func (f FinalRead) String() string {
	if !f.Found {
		return "absent"
	}
	return fmt.Sprintf("%q", f.Value)
}

// Loss is an acknowledged write the final state does not show.
type Loss struct {
	Key string
	// Want is what the key must hold: the acknowledged put's value, or
	// absent after an acknowledged delete.
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
// (acknowledged or unknown) returned before it was invoked, so no order
// can put anything after it. Such a put must still be readable with its
// value; such a delete must have left the key absent (a key that comes back
// is a lost delete). Writes racing with other writes are left to the
// linearizability check. Losses are sorted by key.
func LostWrites(rec *Recorder, final map[string]FinalRead) []Loss {
	return lostWrites(rec.Ops(), final)
}

func lostWrites(ops []Op, final map[string]FinalRead) []Loss {
	writes := make(map[string][]Op)
	for _, op := range ops {
		if op.Input.Kind.isWrite() && op.Status != StatusFailed {
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
		if last.Input.Kind == OpPut {
			want = FinalRead{Value: last.Input.Value, Found: true}
		}
		got, read := final[key]
		if read && got == want {
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
