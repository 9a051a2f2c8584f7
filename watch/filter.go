package watch

import "strings"

// Filter says which keys a watch takes: Key alone, or, with Prefix, every
// key that starts with Key ("" then takes every key).
type Filter struct {
	Key    string
	Prefix bool
}

// Match reports whether the filter takes key.
func (f Filter) Match(key string) bool {
	if f.Prefix {
		return strings.HasPrefix(key, f.Key)
	}
	return key == f.Key
}
