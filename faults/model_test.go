package faults

import (
	"cmp"
	"slices"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// Helpers to write histories by hand: times are abstract ticks.

func put(client int, key, value string, call, ret int, st Status) Op {
	return Op{Client: client, Input: Input{Kind: OpPut, Key: key, Value: value},
		Call: tick(call), Return: tick(ret), Status: st}
}

func del(client int, key string, call, ret int, st Status) Op {
	return Op{Client: client, Input: Input{Kind: OpDelete, Key: key},
		Call: tick(call), Return: tick(ret), Status: st}
}

func get(client int, key, value string, call, ret int) Op {
	return Op{Client: client, Input: Input{Kind: OpGet, Key: key},
		Output: Output{Value: value, Found: true}, Call: tick(call), Return: tick(ret), Status: StatusOK}
}

func getAbsent(client int, key string, call, ret int) Op {
	return Op{Client: client, Input: Input{Kind: OpGet, Key: key},
		Call: tick(call), Return: tick(ret), Status: StatusOK}
}

func tick(n int) time.Duration { return time.Duration(n) * time.Millisecond }

const (
	ok      = StatusOK
	failed  = StatusFailed
	unknown = StatusUnknown
)

// modelCases are hand-written histories with their known verdict; both the
// Operation and the Event form of the checker must agree with it.
var modelCases = []struct {
	name         string
	ops          []Op
	linearizable bool
}{
	{"read of a never-written key is absent", []Op{getAbsent(0, "k", 0, 1)}, true},
	{"read of a value nobody wrote", []Op{get(0, "k", "x", 0, 1)}, false},
	{"read after acknowledged put", []Op{put(0, "k", "a", 0, 1, ok), get(1, "k", "a", 2, 3)}, true},
	{"stale read after acknowledged write", []Op{
		put(0, "k", "a", 0, 1, ok), put(0, "k", "b", 2, 3, ok), get(1, "k", "a", 4, 5),
	}, false},
	{"absent read after acknowledged put", []Op{put(0, "k", "a", 0, 1, ok), getAbsent(1, "k", 2, 3)}, false},
	{"read sees a value whose write failed with 503", []Op{
		put(0, "k", "a", 0, 1, ok), put(0, "k", "b", 2, 3, failed), get(1, "k", "b", 4, 5),
	}, false},
	{"failed write is not required to be seen", []Op{
		put(0, "k", "a", 0, 1, ok), put(0, "k", "b", 2, 3, failed), get(1, "k", "a", 4, 5),
	}, true},
	{"unknown write seen later", []Op{
		put(0, "k", "a", 0, 1, ok), put(0, "k", "b", 2, 3, unknown), get(1, "k", "a", 4, 5), get(1, "k", "b", 6, 7),
	}, true},
	{"unknown write never seen", []Op{
		put(0, "k", "a", 0, 1, ok), put(0, "k", "b", 2, 3, unknown), get(1, "k", "a", 10, 11),
	}, true},
	{"unknown write seen then unseen", []Op{
		put(0, "k", "a", 0, 1, ok), put(0, "k", "b", 2, 3, unknown), get(1, "k", "b", 4, 5), get(1, "k", "a", 6, 7),
	}, false},
	{"unknown write cannot take effect before it was invoked", []Op{
		get(1, "k", "b", 0, 1), put(0, "k", "b", 2, 3, unknown),
	}, false},
	{"concurrent puts, first order", []Op{
		put(0, "k", "a", 0, 10, ok), put(1, "k", "b", 0, 10, ok), get(2, "k", "a", 11, 12),
	}, true},
	{"concurrent puts, second order", []Op{
		put(0, "k", "a", 0, 10, ok), put(1, "k", "b", 0, 10, ok), get(2, "k", "b", 11, 12),
	}, true},
	{"concurrent puts seen in both orders", []Op{
		put(0, "k", "a", 0, 10, ok), put(1, "k", "b", 0, 10, ok), get(2, "k", "a", 11, 12), get(2, "k", "b", 13, 14),
	}, false},
	{"read concurrent with a put may see the old value", []Op{
		put(0, "k", "a", 0, 1, ok), put(0, "k", "b", 2, 10, ok), get(1, "k", "a", 3, 4),
	}, true},
	{"read concurrent with a put may see the new value", []Op{
		put(0, "k", "a", 0, 1, ok), put(0, "k", "b", 2, 10, ok), get(1, "k", "b", 3, 4),
	}, true},
	{"touching intervals are concurrent", []Op{
		put(0, "k", "a", 0, 5, ok), get(1, "k", "a", 5, 6), getAbsent(2, "k", 0, 5),
	}, true},
	{"read after acknowledged delete", []Op{
		put(0, "k", "a", 0, 1, ok), del(0, "k", 2, 3, ok), getAbsent(1, "k", 4, 5),
	}, true},
	{"deleted value comes back", []Op{
		put(0, "k", "a", 0, 1, ok), del(0, "k", 2, 3, ok), get(1, "k", "a", 4, 5),
	}, false},
	{"delete of an absent key", []Op{del(0, "k", 0, 1, ok), getAbsent(0, "k", 2, 3)}, true},
	{"unknown delete seen", []Op{
		put(0, "k", "a", 0, 1, ok), del(0, "k", 2, 3, unknown), getAbsent(1, "k", 4, 5),
	}, true},
	{"keys are independent", []Op{
		put(0, "k1", "a", 0, 1, ok), getAbsent(1, "k2", 2, 3), get(1, "k1", "a", 4, 5),
	}, true},
	{"violation on one key among many", []Op{
		put(0, "k1", "a", 0, 1, ok), put(0, "k2", "b", 0, 1, ok), get(1, "k1", "a", 2, 3), getAbsent(1, "k2", 2, 3),
	}, false},
	{"failed reads are left out", []Op{
		put(0, "k", "a", 0, 1, ok),
		{Client: 1, Input: Input{Kind: OpGet, Key: "k"}, Output: Output{Value: "zzz", Found: true},
			Call: tick(2), Return: tick(3), Status: StatusFailed},
	}, true},
}

func TestModelOperations(t *testing.T) {
	for _, tc := range modelCases {
		t.Run(tc.name, func(t *testing.T) {
			got := porcupine.CheckOperations(KVModel(), Operations(tc.ops))
			if got != tc.linearizable {
				t.Fatalf("linearizable = %v, want %v", got, tc.linearizable)
			}
		})
	}
}

// TestModelEvents runs the same histories through the event form, which
// partitions with PartitionEvent instead of Partition.
func TestModelEvents(t *testing.T) {
	for _, tc := range modelCases {
		t.Run(tc.name, func(t *testing.T) {
			got := porcupine.CheckEvents(KVModel(), toEvents(Operations(tc.ops)))
			if got != tc.linearizable {
				t.Fatalf("linearizable = %v, want %v", got, tc.linearizable)
			}
		})
	}
}

// toEvents turns operations into a time-ordered event list, calls before
// returns at equal times, as porcupine treats intervals as closed.
func toEvents(ops []porcupine.Operation) []porcupine.Event {
	type stamped struct {
		at  int64
		ret bool
		ev  porcupine.Event
		seq int
	}
	var all []stamped
	for id, op := range ops {
		all = append(all,
			stamped{at: op.Call, ev: porcupine.Event{ClientId: op.ClientId, Kind: porcupine.CallEvent, Value: op.Input, Id: id}},
			stamped{at: op.Return, ret: true, ev: porcupine.Event{ClientId: op.ClientId, Kind: porcupine.ReturnEvent, Value: op.Output, Id: id}})
	}
	for i := range all {
		all[i].seq = i
	}
	slices.SortStableFunc(all, func(a, b stamped) int {
		if c := cmp.Compare(a.at, b.at); c != 0 {
			return c
		}
		if a.ret != b.ret {
			if a.ret {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.seq, b.seq)
	})
	evs := make([]porcupine.Event, len(all))
	for i, s := range all {
		evs[i] = s.ev
	}
	return evs
}

func TestModelDescriptions(t *testing.T) {
	m := KVModel()
	ops := []struct {
		in   Input
		out  Output
		want string
	}{
		{Input{Kind: OpPut, Key: "k", Value: "v"}, Output{}, `put("k", "v")`},
		{Input{Kind: OpDelete, Key: "k"}, Output{}, `delete("k")`},
		{Input{Kind: OpGet, Key: "k"}, Output{Value: "v", Found: true}, `get("k") -> "v"`},
		{Input{Kind: OpGet, Key: "k"}, Output{}, `get("k") -> absent`},
	}
	for _, tc := range ops {
		if got := m.DescribeOperation(tc.in, tc.out); got != tc.want {
			t.Errorf("DescribeOperation(%+v, %+v) = %s, want %s", tc.in, tc.out, got, tc.want)
		}
	}
	states := []struct {
		st   keyState
		want string
	}{
		{keyState{}, "absent"},
		{keyState{Value: "v", Present: true}, `"v"`},
		{keyState{Value: "", Present: true}, `""`},
	}
	for _, tc := range states {
		if got := m.DescribeState(tc.st); got != tc.want {
			t.Errorf("DescribeState(%+v) = %s, want %s", tc.st, got, tc.want)
		}
	}
}
