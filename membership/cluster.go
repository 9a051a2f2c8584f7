package membership

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// ParseCluster reads --cluster: peer URLs numbered 1..N in order, as
// raftexample numbers them, or, when ids have gaps (a member replaced under
// a new id, since a removed id is never reused), id=URL for every entry. It
// refuses an id or a URL given twice (URLs compared in ParseURL's form, in
// which the map holds them) and two ids that conflict (nil: none do). Its
// errors are one line each and name --cluster.
func ParseCluster(flag string, conflict IDConflict) (map[uint64]string, error) {
	entries := strings.Split(flag, ",")
	named := 0
	ids := make([]uint64, len(entries))
	for i, e := range entries {
		e = strings.TrimSpace(e)
		ids[i], entries[i] = uint64(i+1), e
		if before, after, ok := strings.Cut(e, "="); ok && !strings.Contains(before, "/") {
			id, err := strconv.ParseUint(before, 10, 64)
			if err != nil || !ValidID(id) {
				return nil, fmt.Errorf("--cluster: %q: want id=URL with an id from 1 up", e)
			}
			ids[i], entries[i] = id, strings.TrimSpace(after)
			named++
		}
	}
	if named != 0 && named != len(entries) {
		return nil, errors.New("--cluster: give every entry as id=URL, or none")
	}
	urls := make([]string, len(entries))
	for i, e := range entries {
		u, err := PeerURL(e)
		if err != nil {
			return nil, fmt.Errorf("--cluster: %w", err)
		}
		if slices.Contains(urls[:i], u) {
			return nil, fmt.Errorf("--cluster: %s is given twice", u)
		}
		urls[i] = u
	}
	out := make(map[uint64]string, len(urls))
	for i, u := range urls {
		if _, dup := out[ids[i]]; dup {
			return nil, fmt.Errorf("--cluster: id %d is given twice", ids[i])
		}
		for _, id := range slices.Sorted(maps.Keys(out)) {
			if conflict != nil && conflict(id, ids[i]) {
				return nil, fmt.Errorf("--cluster: ids %d and %d have the same low 16 bits, which request ids carry: choose another id", id, ids[i])
			}
		}
		out[ids[i]] = u
	}
	return out, nil
}

// FormatCluster writes peers as --cluster takes them: the URLs in id order
// when the ids are 1..N, id=URL entries otherwise. A data dir records it of
// the cluster it was created in, and refusals quote it; ParseCluster reads
// it back to the same members.
func FormatCluster(peers map[uint64]string) string {
	ids := slices.Sorted(maps.Keys(peers))
	named := len(ids) > 0 && ids[len(ids)-1] != uint64(len(ids))
	entries := make([]string, 0, len(ids))
	for _, id := range ids {
		if named {
			entries = append(entries, strconv.FormatUint(id, 10)+"="+peers[id])
		} else {
			entries = append(entries, peers[id])
		}
	}
	return strings.Join(entries, ",")
}
