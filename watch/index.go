package watch

import "strings"

// index finds the live watchers that take a key without looking at every
// watcher: by the key itself, and by the prefixes watched. The watchers of
// other ranges (etcd's range_end, rare) are each looked at.
type index struct {
	keys     map[string]map[*watcher]struct{}
	prefixes map[string]map[*watcher]struct{}
	ranges   map[*watcher]struct{}
}

func newIndex() index {
	return index{
		keys:     make(map[string]map[*watcher]struct{}),
		prefixes: make(map[string]map[*watcher]struct{}),
		ranges:   make(map[*watcher]struct{}),
	}
}

func (x index) bucket(f Filter) map[string]map[*watcher]struct{} {
	if f.Prefix {
		return x.prefixes
	}
	return x.keys
}

func (x index) add(w *watcher) {
	if w.filter.isRange() {
		x.ranges[w] = struct{}{}
		return
	}
	m := x.bucket(w.filter)
	set := m[w.filter.Key]
	if set == nil {
		set = make(map[*watcher]struct{})
		m[w.filter.Key] = set
	}
	set[w] = struct{}{}
}

func (x index) remove(w *watcher) {
	if w.filter.isRange() {
		delete(x.ranges, w)
		return
	}
	m := x.bucket(w.filter)
	if set := m[w.filter.Key]; set != nil {
		delete(set, w)
		if len(set) == 0 {
			delete(m, w.filter.Key)
		}
	}
}

// each calls fn for every watcher that takes key.
func (x index) each(key string, fn func(*watcher)) {
	for w := range x.keys[key] {
		fn(w)
	}
	for w := range x.ranges {
		if w.filter.Match(key) {
			fn(w)
		}
	}
	if len(x.prefixes) == 0 {
		return
	}
	// Whichever is fewer: the distinct prefixes watched, or the key's own
	// prefixes looked up.
	if len(x.prefixes) <= len(key)+1 {
		for p, set := range x.prefixes {
			if strings.HasPrefix(key, p) {
				for w := range set {
					fn(w)
				}
			}
		}
		return
	}
	for i := 0; i <= len(key); i++ {
		for w := range x.prefixes[key[:i]] {
			fn(w)
		}
	}
}
