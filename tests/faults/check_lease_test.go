package faults

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// ms is a time of a hand-written lease history: milliseconds on the
// recorder's clock.
func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// leaseOrigin is the recorder's start of the hand-written histories, for
// the watchers' receive times.
var leaseOrigin = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func leaseSince(t time.Time) time.Duration { return t.Sub(leaseOrigin) }

// okCall is a request sent at call and answered 200 at ret (TTL 3).
func okCall(call, ret int) LeaseCall {
	return LeaseCall{Call: ms(call), Return: ms(ret), Status: 200, TTL: 3}
}

// leaseCase is a lease of TTL 3 s (id 7, client 6) with two keys, granted
// at 0, kept alive at 1, 2 and 3 s and stopped at 3.01 s; its keys are put
// at revisions 5 and 6, read present at 0.5 and 3.5 s, and absent from
// 6.5 s; every member's watcher received their deletes at revision 9,
// 6.3 s; the lists lacked it at 7 s. Its horizon is 6 s, its bound 4.5 s
// after 3.01 s.
func leaseCase() LeaseHistory {
	const k0, k1 = "r1-L0-1-0", "r1-L0-1-1"
	run := LeaseRun{ID: 7, Client: 6, TTL: 3, Keys: []string{k0, k1}, Prefix: "r1-L0-1-",
		Grants: []LeaseCall{okCall(0, 10)}, Granted: true, GrantCall: 0, GrantReturn: ms(10),
		KeepAlives: []LeaseCall{okCall(1000, 1010), okCall(2000, 2010), okCall(3000, 3010)},
		Stopped:    true, Stop: ms(3010)}
	ops := []Op{
		leasePut(6, k0, "v0", 7, 5, 20, 30, ok), leasePut(6, k1, "v1", 7, 6, 40, 50, ok),
		rangeGet(6, k0, "v0", 5, 7, 500, 510), rangeGet(6, k1, "v1", 6, 7, 500, 510),
		rangeGet(6, k0, "v0", 5, 7, 3500, 3510), rangeGet(6, k1, "v1", 6, 7, 3500, 3510),
		rangeAbsent(6, k0, 9, 6500, 6510), rangeAbsent(6, k1, 9, 6500, 6510),
	}
	var records []WatchRecord
	for id := uint64(1); id <= 3; id++ {
		del := wmsg(9, wdel(k0, 9), wdel(k1, 9))
		del.At = leaseOrigin.Add(ms(6300 + int(id)))
		records = append(records, WatchRecord{Member: id, After: 4, Through: 9, Msgs: []WatchMsg{
			wmsg(5, WatchEvent{Type: "put", Key: k0, Value: "v0", CreateRevision: 5, ModRevision: 5, Version: 1, Lease: 7}),
			wmsg(6, WatchEvent{Type: "put", Key: k1, Value: "v1", CreateRevision: 6, ModRevision: 6, Version: 1, Lease: 7}),
			del,
		}})
	}
	return LeaseHistory{Runs: []LeaseRun{run}, Ops: ops, Records: records, Since: leaseSince,
		Settled: ms(7000), Bounds: DefaultLeaseBounds}
}

// atDelete sets when each watcher received the deletes.
func atDelete(h *LeaseHistory, at int) {
	for i := range h.Records {
		h.Records[i].Msgs[2].At = leaseOrigin.Add(ms(at))
	}
}

func TestCheckLeases(t *testing.T) {
	cases := []struct {
		name   string
		change func(h *LeaseHistory)
		want   []string // each must be among the violations; nil: none
	}{
		{"kept alive, stopped, expired in time", nil, nil},
		{"the watchers received the deletes before the horizon", func(h *LeaseHistory) { atDelete(h, 5500) },
			[]string{"expired early: member 1's watcher received the delete", "before 6s"}},
		{"a keep-alive answered 404 before the horizon", func(h *LeaseHistory) {
			r := &h.Runs[0]
			r.KeepAlives = append(r.KeepAlives[:2], LeaseCall{Call: ms(3000), Return: ms(3010), Status: 404})
			r.Stopped, r.Lost, r.LostAt = false, true, ms(3010)
		}, []string{"expired early: a keep-alive sent at 3s answered 404 at 3.01s, before 5s"}},
		{"a put answered 404 before the horizon", func(h *LeaseHistory) {
			h.Ops = append(h.Ops, leasePutGone(6, "r1-L0-1-1", "v2", 7, 1100, 1200))
		}, []string{`expired early: a put of "r1-L0-1-1" with it sent at 1.1s answered 404`}},
		{"a range read without a key before the horizon", func(h *LeaseHistory) {
			h.Ops = append(h.Ops, rangeAbsent(6, "r1-L0-1-0", 8, 4000, 4010), rangeAbsent(6, "r1-L0-1-1", 8, 4000, 4010))
		}, []string{`expired early: a range read sent at 4s answered at 4.01s without "r1-L0-1-0"`}},
		{"a read without a key whose put was not yet acknowledged proves nothing", func(h *LeaseHistory) {
			h.Ops = append(h.Ops, rangeAbsent(6, "r1-L0-1-1", 3, 25, 45))
		}, nil},
		{"a broken chain of keep-alives protects no longer", func(h *LeaseHistory) {
			// The second keep-alive answered after the first's horizon
			// (4 s): the lease may have lapsed, and went at 4.3 s.
			h.Runs[0].KeepAlives[1] = okCall(2000, 4100)
			atDelete(h, 4300)
		}, nil},
		{"a keep-alive answered late extends nothing", func(h *LeaseHistory) {
			h.Runs[0].KeepAlives[1] = okCall(2000, 4100)
			atDelete(h, 3900)
		}, []string{"expired early", "before 4s"}},
		{"expired late", func(h *LeaseHistory) {
			atDelete(h, 9000)
			h.Ops = h.Ops[:6]
			h.Settled = ms(10000)
		}, []string{"expired late: its holder stopped renewing it at 3.01s, and it was seen gone only 5.99s later"}},
		{"a fault window after the holder stopped extends the bound", func(h *LeaseHistory) {
			atDelete(h, 9000)
			h.Ops = h.Ops[:6]
			h.Settled = ms(10000)
			h.Windows = []FaultWindow{{"kill -9 the leader", ms(5000), ms(7000)}}
		}, nil},
		{"a fault window that began after the lease went does not", func(h *LeaseHistory) {
			atDelete(h, 9000)
			h.Ops = h.Ops[:6]
			h.Settled = ms(10000)
			h.Windows = []FaultWindow{{"kill -9 the leader", ms(9500), ms(12000)}}
		}, []string{"expired late"}},
		{"seen gone only when settling, late", func(h *LeaseHistory) {
			h.Records = nil
			h.Ops = h.Ops[:6]
			h.Settled = ms(8000)
		}, []string{"expired late", "every member's list lacked it at 8s"}},
		{"deletes at two revisions", func(h *LeaseHistory) {
			for i := range h.Records {
				h.Records[i].Msgs[2] = wmsg(9, wdel("r1-L0-1-0", 9))
				h.Records[i].Msgs = append(h.Records[i].Msgs, wmsg(10, wdel("r1-L0-1-1", 10)))
			}
		}, []string{"received its keys' deletes at revisions [9 10], not at one"}},
		{"members disagree on the revocation's revision", func(h *LeaseHistory) {
			h.Records[1].Msgs[2] = wmsg(10, wdel("r1-L0-1-0", 10), wdel("r1-L0-1-1", 10))
		}, []string{"member 2's watcher received its keys' deletes at revision 10, another member's at 9"}},
		{"a key outlives its lease", func(h *LeaseHistory) {
			h.Records[2].Msgs[2] = wmsg(9, wdel("r1-L0-1-0", 9))
		}, []string{`member 3's watcher received a put of "r1-L0-1-1" at revision 6 and no delete after it`}},
		{"a key put with it after the revocation", func(h *LeaseHistory) {
			h.Records[0].Msgs = append(h.Records[0].Msgs,
				wmsg(11, WatchEvent{Type: "put", Key: "r1-L0-1-0", Value: "v3", CreateRevision: 11, ModRevision: 11, Version: 1, Lease: 7}))
		}, []string{`member 1's watcher received a put of "r1-L0-1-0" at revision 11 and no delete after it`}},
		{"no watcher saw a key's delete", func(h *LeaseHistory) {
			for i := range h.Records {
				h.Records[i].Msgs[2] = wmsg(9, wdel("r1-L0-1-0", 9))
				h.Records[i].Msgs[1] = wmsg(6, wput("other", "x", 6, 6, 1))
			}
		}, []string{`no watcher received the delete of "r1-L0-1-1"`}},
		{"a range read shows part of the keys", func(h *LeaseHistory) {
			h.Ops = append(h.Ops, rangeGet(6, "r1-L0-1-0", "v0", 5, 7, 6000, 6010), rangeAbsent(6, "r1-L0-1-1", 8, 6000, 6010))
		}, []string{`a range read sent at 6s shows ["r1-L0-1-0"] present and ["r1-L0-1-1"] absent`}},
		{"an answer that breaks the contract", func(h *LeaseHistory) {
			h.Runs[0].Errors = []string{"a keep-alive of lease 7 (TTL 3) answered ttl 2"}
		}, []string{"answered ttl 2"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := leaseCase()
			if tc.change != nil {
				tc.change(&h)
			}
			rep := CheckLeases(h)
			if tc.want == nil && len(rep.Violations) > 0 {
				t.Fatalf("violations:\n%s", strings.Join(rep.Violations, "\n"))
			}
			for _, w := range tc.want {
				if !slices.ContainsFunc(rep.Violations, func(v string) bool { return strings.Contains(v, w) }) {
					t.Errorf("no violation says %q; found:\n%s", w, strings.Join(rep.Violations, "\n"))
				}
			}
		})
	}
}

// TestCheckLeasesRevokes: the revocation joins the history on each key,
// from the first grant to the first evidence, at the watchers' revision;
// the model then takes the lease's history, and refuses a read that sees
// a key after it.
func TestCheckLeasesRevokes(t *testing.T) {
	h := leaseCase()
	rep := CheckLeases(h)
	want := []Op{
		revoke(6, "r1-L0-1-0", 7, 9, true, 0, 6301),
		revoke(6, "r1-L0-1-1", 7, 9, true, 0, 6301),
	}
	if !slices.Equal(rep.Revokes, want) {
		t.Fatalf("revocations %+v\nwant %+v", rep.Revokes, want)
	}
	st := rep.Stats
	if st.Leases != 1 || st.Granted != 1 || st.Stopped != 1 || st.KeepAlives != 3 || st.KeepAlivesOK != 3 ||
		st.Protected != 1 || st.ProtectedFor != ms(6000) || st.SharedRevision != 1 || st.Evidence["watch"] != 1 ||
		len(st.Expiries) != 1 || st.Expiries[0].Latency != ms(3291) || st.Expiries[0].Bound != ms(4500) {
		t.Errorf("stats %+v", st)
	}
	if sum := Summary(st.Expiries); sum.Worst.ID != 7 || sum.OverTTL != ms(291) || sum.Free != 1 || sum.N != 1 {
		t.Errorf("summary %+v", sum)
	}
	if s := st.String(); !strings.Contains(s, "1 expiries seen, at most 3.291s after the holder's last renewal; 1 without a fault window after the holder stopped, at most 291ms past the TTL") {
		t.Errorf("stats read %s", s)
	}
	sum := Summary([]LeaseExpiry{
		{ID: 1, TTL: ms(3000), Latency: ms(3400), Bound: ms(4500)},
		{ID: 2, TTL: ms(3000), Latency: ms(5000), Faults: ms(1000), Bound: ms(5500)},
		{ID: 3, TTL: ms(4000), Latency: ms(4200), Bound: ms(5500)},
	})
	if sum.N != 3 || sum.Free != 2 || sum.OverTTL != ms(400) || sum.OverFaults != ms(1000) || sum.Worst.ID != 2 || sum.MaxLatency != ms(5000) {
		t.Errorf("summary %+v", sum)
	}

	ops := append(h.Ops, rep.Revokes...)
	if res, err := Check(Operations(ops), 0, ""); err != nil {
		t.Fatalf("the lease's history with its revocations: %v (%v)", err, res.Outcome)
	}
	late := append(slices.Clone(ops), rangeGet(6, "r1-L0-1-0", "v0", 5, 7, 6400, 6410))
	if _, err := Check(Operations(late), 0, ""); err == nil {
		t.Fatal("a read of a key after its lease's revocation is linearizable")
	}
	// Without the watchers, the revocation's revision is not known: the
	// model deletes the attached keys at a revision of its own.
	h.Records = nil
	rep = CheckLeases(h)
	if rep.Revokes[0].Output != (Output{}) || rep.Revokes[0].Return != ms(6510) {
		t.Errorf("without watchers: %+v, want no revision, returned at the read that saw it gone", rep.Revokes[0])
	}
	if _, err := Check(Operations(append(slices.Clone(h.Ops), rep.Revokes...)), 0, ""); err != nil {
		t.Fatalf("without watchers: %v", err)
	}
}

// TestCheckWatchesLeases: a lease's revocation explains its keys' deletes,
// and a put event must name the lease its write named.
func TestCheckWatchesLeases(t *testing.T) {
	h := leaseCase()
	rep := CheckLeases(h)
	withRevokes := append(slices.Clone(h.Ops), rep.Revokes...)
	if vs := CheckWatches(withRevokes, h.Records); len(vs) > 0 {
		t.Errorf("with the revocations: %v", vs)
	}
	vs := CheckWatches(h.Ops, h.Records)
	if len(vs) == 0 || !strings.Contains(vs[0].What, "no delete of the history explains") {
		t.Errorf("without the revocations: %v, want the deletes unexplained", vs)
	}
	h.Records[1].Msgs[0].Events[0].Lease = 8
	vs = CheckWatches(withRevokes, h.Records)
	if !slices.ContainsFunc(vs, func(v WatchViolation) bool {
		return v.Member == 2 && strings.Contains(v.What, "attached to lease 8, its write named lease 7")
	}) {
		t.Errorf("a put event of another lease: %v", vs)
	}
}
