package watch

import "strings"

// Filter says which keys a watch takes: Key alone, or, with Prefix, every
// key that starts with Key ("" then takes every key), or, with End (and
// not Prefix), every key in [Key, End), an End of "\x00" meaning every key
// from Key on, as etcd's range_end does.
type Filter struct {
	Key    string
	Prefix bool
	End    string
}

// RangeEndAll is the End of a Filter that takes every key from Key on.
const RangeEndAll = "\x00"

// Match reports whether the filter takes key.
func (f Filter) Match(key string) bool {
	switch {
	case f.Prefix:
		return strings.HasPrefix(key, f.Key)
	case f.End == "":
		return key == f.Key
	case f.End == RangeEndAll:
		return key >= f.Key
	default:
		return key >= f.Key && key < f.End
	}
}

// isRange reports whether the filter is a range that is neither one key nor
// a prefix: the hub's index looks at each of those for every key.
func (f Filter) isRange() bool { return !f.Prefix && f.End != "" }
