package faults

import (
	"fmt"
	"hash/fnv"

	"github.com/anishathalye/porcupine"
)

// keyState is the model's state for one key. It is a comparable value so
// that porcupine's default == serves as equality.
type keyState struct {
	Value   string
	Present bool
}

// KVModel is the sequential specification of the node's key-value map,
// partitioned by key: operations on different keys never constrain each
// other, so each key is checked on its own, which keeps checking tractable
// for long histories. Inputs are Input and outputs Output.
func KVModel() porcupine.Model {
	return porcupine.Model{
		Partition:                 partitionByKey,
		PartitionEvent:            partitionEventsByKey,
		Init:                      func() any { return keyState{} },
		Step:                      kvStep,
		Hash:                      kvHash,
		DescribeOperation:         describeKVOperation,
		DescribeState:             describeKVState,
		DescribeOperationMetadata: describeKVMetadata,
	}
}

func kvStep(state, input, output any) (bool, any) {
	st := state.(keyState)
	in := input.(Input)
	switch in.Kind {
	case OpPut:
		return true, keyState{Value: in.Value, Present: true}
	case OpDelete:
		return true, keyState{}
	case OpGet:
		out, _ := output.(Output)
		if out.Found != st.Present || (out.Found && out.Value != st.Value) {
			return false, st
		}
		return true, st
	}
	// An input the model does not know cannot be explained by any order.
	return false, st
}

func kvHash(state any) uint64 {
	st := state.(keyState)
	h := fnv.New64a()
	if st.Present {
		_, _ = h.Write([]byte{1})
		_, _ = h.Write([]byte(st.Value))
	}
	return h.Sum64()
}

func partitionByKey(history []porcupine.Operation) [][]porcupine.Operation {
	return groupByKey(history, func(op porcupine.Operation) string { return op.Input.(Input).Key })
}

// partitionEventsByKey groups events by the key of their call; a return
// carries no key, so it follows its call through the shared Id.
func partitionEventsByKey(history []porcupine.Event) [][]porcupine.Event {
	keyOf := make(map[int]string)
	return groupByKey(history, func(ev porcupine.Event) string {
		if ev.Kind == porcupine.CallEvent {
			keyOf[ev.Id] = ev.Value.(Input).Key
		}
		return keyOf[ev.Id]
	})
}

// groupByKey splits items into groups of equal key, each in its original
// order, the groups in the order their keys first appear. key is called
// once per item, in order.
func groupByKey[T any](items []T, key func(T) string) [][]T {
	index := make(map[string]int)
	var groups [][]T
	for _, it := range items {
		k := key(it)
		i, ok := index[k]
		if !ok {
			i = len(groups)
			index[k] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], it)
	}
	return groups
}

func describeKVOperation(input, output any) string {
	in := input.(Input)
	switch in.Kind {
	case OpPut:
		return fmt.Sprintf("put(%q, %q)", in.Key, in.Value)
	case OpDelete:
		return fmt.Sprintf("delete(%q)", in.Key)
	case OpGet:
		out, _ := output.(Output)
		if !out.Found {
			return fmt.Sprintf("get(%q) -> absent", in.Key)
		}
		return fmt.Sprintf("get(%q) -> %q", in.Key, out.Value)
	}
	return fmt.Sprintf("%v -> %v", input, output)
}

func describeKVState(state any) string {
	st := state.(keyState)
	if !st.Present {
		return "absent"
	}
	return fmt.Sprintf("%q", st.Value)
}

func describeKVMetadata(meta any) string {
	s, _ := meta.(string)
	return s
}
