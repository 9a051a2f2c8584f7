package faults

import (
	"slices"
	"strings"
	"testing"
)

// Helpers for hand-made watch records.

func wput(key, value string, create, mod, version uint64) WatchEvent {
	return WatchEvent{Type: "put", Key: key, Value: value, CreateRevision: create, ModRevision: mod, Version: version}
}

func wdel(key string, mod uint64) WatchEvent {
	return WatchEvent{Type: "delete", Key: key, ModRevision: mod}
}

func wmsg(rev uint64, evs ...WatchEvent) WatchMsg { return WatchMsg{Revision: rev, Events: evs} }

// watchHistoryOps is a round's history: acknowledged puts, a CAS, a
// transaction and deletes, a delete that found nothing, writes of unknown
// outcome (one landed, one not), and writes that certainly did not apply.
func watchHistoryOps() []Op {
	return []Op{
		putAt(0, "k1", "a", 10, 0, 1),
		putAt(1, "k2", "b", 11, 0, 1),
		cas(0, "k1", "c", 10, 2, 3, wrote(12), ok),
		delAt(1, "k2", true, 13, 2, 3),
		put(2, "k3", "u", 2, 3, unknown),  // lands at 14
		put(2, "k3", "u2", 4, 5, unknown), // never lands
		txnCAS(3, "k1", "c", "d", 6, 7, wrote(15), ok),
		delAt(3, "k2", false, 15, 8, 9),                            // deleted nothing
		del(0, "k1", 8, 9, unknown),                                // lands at 16
		put(1, "k3", "f", 8, 9, failed),                            // refused before it was proposed
		cas(1, "k3", "g", 3, 8, 9, refusedAt(14), ok),              // a 412
		txnCAS(2, "k3", "x", "h", 8, 9, refusedValue("u", 14), ok), // its failure branch ran
		putAt(4, "sync", "s", 17, 10, 11),                          // the test's own marker
	}
}

// watchMsgs is what every member's watcher must see of watchHistoryOps.
func watchMsgs() []WatchMsg {
	return []WatchMsg{
		wmsg(10, wput("k1", "a", 10, 10, 1)),
		wmsg(11, wput("k2", "b", 11, 11, 1)),
		wmsg(12, wput("k1", "c", 10, 12, 2)),
		wmsg(13, wdel("k2", 13)),
		wmsg(14, wput("k3", "u", 14, 14, 1)),
		wmsg(15, wput("k1", "d", 10, 15, 3)),
		wmsg(16, wdel("k1", 16)),
		wmsg(17, wput("sync", "s", 17, 17, 1)),
	}
}

// threeRecords is the same record for members 1 to 3, each changed by
// change (nil: unchanged).
func threeRecords(change func(member uint64, msgs []WatchMsg) []WatchMsg) []WatchRecord {
	var rs []WatchRecord
	for id := uint64(1); id <= 3; id++ {
		msgs := watchMsgs()
		if change != nil {
			msgs = change(id, msgs)
		}
		rs = append(rs, WatchRecord{Member: id, After: 9, Through: 17, Msgs: msgs})
	}
	return rs
}

// onMember changes the record of one member only.
func onMember(id uint64, change func([]WatchMsg) []WatchMsg) func(uint64, []WatchMsg) []WatchMsg {
	return func(member uint64, msgs []WatchMsg) []WatchMsg {
		if member != id {
			return msgs
		}
		return change(msgs)
	}
}

// onAll changes every member's record alike.
func onAll(change func([]WatchMsg) []WatchMsg) func(uint64, []WatchMsg) []WatchMsg {
	return func(_ uint64, msgs []WatchMsg) []WatchMsg { return change(msgs) }
}

// without drops the message of revision rev.
func without(rev uint64) func([]WatchMsg) []WatchMsg {
	return func(msgs []WatchMsg) []WatchMsg {
		return slices.DeleteFunc(msgs, func(m WatchMsg) bool { return m.Revision == rev })
	}
}

// replacing puts m in place of the message of its revision.
func replacing(m WatchMsg) func([]WatchMsg) []WatchMsg {
	return func(msgs []WatchMsg) []WatchMsg {
		for i := range msgs {
			if msgs[i].Revision == m.Revision {
				msgs[i] = m
			}
		}
		return msgs
	}
}

// inserting adds m before the message at index i.
func inserting(i int, m WatchMsg) func([]WatchMsg) []WatchMsg {
	return func(msgs []WatchMsg) []WatchMsg { return slices.Insert(msgs, i, m) }
}

// violation names one expected violation: whose, at which revision, and
// words of its description.
type violation struct {
	member uint64
	rev    uint64
	what   string
}

func TestCheckWatches(t *testing.T) {
	cases := []struct {
		name    string
		ops     []Op
		records []WatchRecord
		want    []violation // each must be among those found; nil: none found
	}{
		{"every member saw every write once, in order", watchHistoryOps(), threeRecords(nil), nil},
		{"an unknown write that landed may be missing everywhere", watchHistoryOps(),
			threeRecords(onAll(func(msgs []WatchMsg) []WatchMsg {
				// Without k3=u, and without the unknown delete of k1.
				return without(16)(without(14)(msgs))
			})), nil},
		{"a revision no acknowledged write made may be missing everywhere", watchHistoryOps(),
			threeRecords(onAll(without(16))), nil},
		{"the records may differ outside the span they all cover", watchHistoryOps(), func() []WatchRecord {
			rs := threeRecords(nil)
			// Member 3 covers only up to 16: member 1's 17 is not compared.
			rs[2].Through, rs[2].Msgs = 16, rs[2].Msgs[:len(rs[2].Msgs)-1]
			// The marker then is outside member 3's record.
			return rs
		}(), []violation{{3, 17, "outside the record's revisions (9, 16]"}}},
		{"a message beyond the record's end", watchHistoryOps(), func() []WatchRecord {
			rs := threeRecords(nil)
			rs[0].Through = 16
			return rs
		}(), []violation{{1, 17, "beyond the record's end, 16"}}},
		{"a gap", watchHistoryOps(), threeRecords(onMember(2, without(12))),
			[]violation{{2, 12, "acknowledged write is missing"}, {1, 12, "member 1 has revision 12, member 2 has not"}}},
		{"a repeat", watchHistoryOps(), threeRecords(onMember(2, inserting(2, wmsg(11, wput("k2", "b", 11, 11, 1))))),
			[]violation{{2, 11, "received twice"}, {2, 11, `"k2"="b" again`}, {1, 11, "member 2 has revision 11, member 1 has not"}}},
		{"a repeat after a cut, at another revision", watchHistoryOps(), threeRecords(onMember(3, inserting(5, wmsg(14, wput("k1", "a", 10, 14, 1))))),
			[]violation{{3, 14, "received twice"}, {3, 14, `"k1"="a" again`}}},
		{"out of order", watchHistoryOps(), threeRecords(onMember(3, func(msgs []WatchMsg) []WatchMsg {
			msgs[1], msgs[2] = msgs[2], msgs[1]
			return msgs
		})), []violation{{3, 11, "received after 12"}, {1, 11, "member 1 has revision 11, member 3 has not"}}},
		{"an acknowledged write missing from every member", watchHistoryOps(), threeRecords(onAll(without(15))),
			[]violation{{1, 15, "missing"}, {2, 15, "missing"}, {3, 15, "missing"}}},
		{"an acknowledged delete missing", watchHistoryOps(), threeRecords(onMember(1, without(13))),
			[]violation{{1, 13, "acknowledged write is missing"}}},
		{"a divergent member: an unknown write only some saw", watchHistoryOps(), threeRecords(onMember(3, without(14))),
			[]violation{{1, 14, "member 1 has revision 14, member 3 has not"}}},
		{"a divergent member: another value at a revision", watchHistoryOps(),
			threeRecords(onMember(2, replacing(wmsg(14, wput("k3", "u2", 14, 14, 1))))),
			[]violation{{1, 14, "members 1 and 2 diverge at revision 14"}}},
		{"a write recorded as failed appears", watchHistoryOps(),
			threeRecords(onAll(replacing(wmsg(14, wput("k3", "f", 14, 14, 1))))),
			[]violation{{1, 14, "recorded as failed"}, {2, 14, "recorded as failed"}}},
		{"a refused CAS appears", watchHistoryOps(),
			threeRecords(onMember(1, replacing(wmsg(14, wput("k3", "g", 14, 14, 1))))),
			[]violation{{1, 14, "was refused"}}},
		{"a refused transaction appears", watchHistoryOps(),
			threeRecords(onMember(1, replacing(wmsg(14, wput("k3", "h", 14, 14, 1))))),
			[]violation{{1, 14, "was refused"}}},
		{"a value no client wrote", watchHistoryOps(),
			threeRecords(onMember(1, replacing(wmsg(14, wput("k3", "zzz", 14, 14, 1))))),
			[]violation{{1, 14, "no write of the history wrote"}}},
		{"an event of a key no client wrote", watchHistoryOps(),
			threeRecords(onMember(1, replacing(wmsg(14, wput("k3", "u", 14, 14, 1), wput("other", "u", 14, 14, 1))))),
			[]violation{{1, 14, `"other"="u", which no write`}}},
		{"a delete no client made", watchHistoryOps(),
			threeRecords(onMember(2, replacing(wmsg(16, wdel("k1", 16), wdel("k3", 16))))),
			[]violation{{2, 16, `a delete of "k3" that no delete`}}},
		{"an unknown delete explains one delete, not two",
			append(watchHistoryOps(), put(2, "k1", "u3", 10, 11, unknown)), func() []WatchRecord {
				rs := threeRecords(onAll(func(msgs []WatchMsg) []WatchMsg {
					// k1, deleted at 16 by the unknown delete, is put again
					// by the unknown put and deleted again: by nobody.
					return append(msgs, wmsg(18, wput("k1", "u3", 18, 18, 1)), wmsg(19, wdel("k1", 19)))
				}))
				for i := range rs {
					rs[i].Through = 19
				}
				return rs
			}(),
			[]violation{{1, 19, `a delete of "k1" that no delete`}, {3, 19, `a delete of "k1" that no delete`}}},
		{"an acknowledged put at another revision than it answered", watchHistoryOps(),
			threeRecords(onMember(1, func(msgs []WatchMsg) []WatchMsg {
				msgs = without(15)(msgs)
				return replacing(wmsg(16, wput("k1", "d", 10, 16, 3)))(msgs)
			})),
			[]violation{{1, 15, "missing"}, {1, 16, "another revision than its write answered"}}},
		{"the acknowledged delete's revision shows a put", watchHistoryOps(),
			threeRecords(onMember(1, replacing(wmsg(13, wput("k2", "b", 11, 13, 2))))),
			[]violation{{1, 13, "not the acknowledged delete"}}},
		{"the acknowledged put's revision shows another value", watchHistoryOps(),
			threeRecords(onMember(1, replacing(wmsg(15, wput("k1", "u2", 10, 15, 3))))),
			[]violation{{1, 15, "not the acknowledged write"}}},
		{"an event of another revision than its message's", watchHistoryOps(),
			threeRecords(onMember(1, replacing(wmsg(12, wput("k1", "c", 10, 11, 2))))),
			[]violation{{1, 12, "mod_revision 11 in the message of revision 12"}}},
		{"one revision's events in two messages", watchHistoryOps(),
			threeRecords(onMember(1, inserting(7, wmsg(16, wput("k3", "u2", 14, 16, 2))))),
			[]violation{{1, 16, "received twice"}}},
		{"a key twice in one revision", watchHistoryOps(),
			threeRecords(onMember(1, replacing(wmsg(14, wput("k3", "u", 14, 14, 1), wput("k3", "u2", 14, 14, 2))))),
			[]violation{{1, 14, `key "k3" twice`}}},
		{"an event below what a progress said was complete", watchHistoryOps(),
			threeRecords(onMember(3, func(msgs []WatchMsg) []WatchMsg {
				msgs[3].Covered = 13 // a progress of 13 came before 13's events
				return msgs
			})),
			[]violation{{3, 13, "complete through 13"}}},
		{"an empty message", watchHistoryOps(), threeRecords(onMember(1, replacing(wmsg(16)))),
			[]violation{{1, 16, "no events"}}},
		{"a put whose counters do not follow the key's last", watchHistoryOps(),
			threeRecords(onAll(replacing(wmsg(12, wput("k1", "c", 10, 12, 5))))),
			[]violation{{1, 12, "a put after create_revision 10 version 1"}}},
		{"a put of a deleted key that does not create it", watchHistoryOps(),
			threeRecords(onAll(func(msgs []WatchMsg) []WatchMsg {
				return replacing(wmsg(14, wput("k2", "u", 11, 14, 2)))(msgs)
			})),
			[]violation{{1, 14, "does not create it"}}},
		{"a delete of a deleted key", watchHistoryOps(),
			threeRecords(onMember(2, replacing(wmsg(14, wdel("k2", 14))))),
			[]violation{{2, 14, "a delete of an absent key"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := CheckWatches(tc.ops, tc.records)
			if testing.Verbose() {
				for _, v := range got {
					t.Logf("%v", v)
				}
			}
			if tc.want == nil {
				for _, v := range got {
					t.Errorf("unexpected violation: %v", v)
				}
				return
			}
			if len(got) == 0 {
				t.Fatal("no violation found")
			}
			for _, w := range tc.want {
				if !slices.ContainsFunc(got, func(v WatchViolation) bool {
					return v.Member == w.member && v.Revision == w.rev && strings.Contains(v.What, w.what)
				}) {
					t.Errorf("no violation of member %d at %d saying %q; found:\n%v", w.member, w.rev, w.what, got)
				}
			}
			for _, v := range got {
				if v.Context == "" {
					t.Errorf("a violation without context: %v", v)
				}
			}
		})
	}
}

// A violation's report shows the neighbouring messages, the missing
// revision's place marked by its neighbours.
func TestWatchViolationContext(t *testing.T) {
	got := CheckWatches(watchHistoryOps(), threeRecords(onMember(2, without(12))))
	var missing *WatchViolation
	for i, v := range got {
		if v.Member == 2 && strings.Contains(v.What, "missing") {
			missing = &got[i]
		}
	}
	if missing == nil {
		t.Fatalf("no missing write reported: %v", got)
	}
	s := missing.String()
	for _, want := range []string{"member 2, revision 12", `client 0's put("k1", "c") if @10 @12`, "no message at 12", "@11 ", "@13 "} {
		if !strings.Contains(s, want) {
			t.Errorf("the report lacks %q:\n%s", want, s)
		}
	}
}
