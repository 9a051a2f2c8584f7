package faults

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// LeaseBounds are the node's timing promises that CheckLeases holds it to
// (docs/api.md, "Leases"; kv/lessor.go).
type LeaseBounds struct {
	// Unit is a TTL's second.
	Unit time.Duration
	// ElectionTimeout is what a new leader adds to every lease's TTL,
	// and the README's slack for an expiry: "within the lease's TTL plus
	// an election timeout".
	ElectionTimeout time.Duration
	// Tick is how often the leader looks for leases past their deadline
	// (500 ms): an expired lease is proposed for revocation at most that
	// late.
	Tick time.Duration
}

// DefaultLeaseBounds are cmd/node's at its defaults: an election timeout
// of 10 ticks of 100 ms, the lessor's 500 ms.
var DefaultLeaseBounds = LeaseBounds{Unit: time.Second, ElectionTimeout: time.Second, Tick: 500 * time.Millisecond}

// FaultWindow is when a fault of the schedule was active: from just before
// it was injected until the cluster served writes through every member
// again after its heal. Leadership changes only within one.
type FaultWindow struct {
	Name     string
	From, To time.Duration
}

// LeaseHistory is what CheckLeases judges: the lease clients' runs, the
// round's history (their puts and range reads among the workers'
// operations), the watchers' records of the round, the fault windows,
// and Settled, when every lease of the round was seen gone on every
// member (the end of settling). Since puts a watcher's receive time on
// the recorder's clock (Recorder.Since).
type LeaseHistory struct {
	Runs    []LeaseRun
	Ops     []Op
	Records []WatchRecord
	Since   func(time.Time) time.Duration
	Windows []FaultWindow
	Settled time.Duration
	Bounds  LeaseBounds
}

// LeaseReport is what CheckLeases found.
type LeaseReport struct {
	// Violations break the lease contract, each described for a person.
	Violations []string
	// Revokes are the leases' revocations as the history's operations,
	// one OpRevoke per key a put may have attached: from the first grant
	// attempt's call to the first evidence that the lease was gone, with
	// the revision of its deletes as the watchers received them. They
	// are for the model (and for CheckWatches, which then takes their
	// deletes as explained).
	Revokes []Op
	Stats   LeaseStats
}

// LeaseStats summarize the lease clients' round.
type LeaseStats struct {
	Leases, Granted, Stopped, Lost int
	// KeepAlives counts the keep-alives sent; KeepAlivesOK those answered
	// 200, KeepAlivesGone 404.
	KeepAlives, KeepAlivesOK, KeepAlivesGone int
	// Protected counts the leases whose holder's keep-alives kept them
	// alive for a while (a horizon past their grant's TTL), and
	// ProtectedFor the time it covered in all.
	Protected    int
	ProtectedFor time.Duration
	// Expiries are the stopped leases whose expiry was observed, with
	// their latency: from the holder's last renewal to the first
	// evidence that the lease was gone.
	Expiries []LeaseExpiry
	// Unobserved counts the stopped leases without a key (every put
	// failed): nothing shows their end but the settling after the round.
	Unobserved int
	// Evidence counts how each stopped lease's end was first seen.
	Evidence map[string]int
	// SharedRevision counts the leases whose keys' deletes the watchers
	// received, every acknowledged key's at one revision.
	SharedRevision int
}

// LeaseExpiry is one stopped lease's expiry.
type LeaseExpiry struct {
	ID      int64
	TTL     time.Duration
	Latency time.Duration // from the holder's last renewal to the first evidence
	Faults  time.Duration // the fault windows' share of the bound
	Bound   time.Duration
}

// ExpirySummary is the worst of a set of expiries: Worst, the closest to
// its bound; OverTTL, the most an expiry with no fault window after its
// holder stopped (Free of them) took past its TTL, which the README's
// "within the TTL plus an election timeout" is about; OverFaults, the
// most one with a fault window took past its TTL and the window.
type ExpirySummary struct {
	N, Free             int
	Worst               LeaseExpiry
	MaxLatency          time.Duration
	OverTTL, OverFaults time.Duration
}

// Summary sums up expiries.
func Summary(expiries []LeaseExpiry) ExpirySummary {
	var s ExpirySummary
	for i, e := range expiries {
		s.N++
		if i == 0 || e.Latency-e.Bound > s.Worst.Latency-s.Worst.Bound {
			s.Worst = e
		}
		s.MaxLatency = max(s.MaxLatency, e.Latency)
		over := e.Latency - e.TTL - e.Faults
		if e.Faults == 0 {
			if s.Free == 0 || over > s.OverTTL {
				s.OverTTL = over
			}
			s.Free++
		} else if s.N-s.Free == 1 || over > s.OverFaults {
			s.OverFaults = over
		}
	}
	return s
}

func (s ExpirySummary) String() string {
	if s.N == 0 {
		return "no expiry seen"
	}
	r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	out := fmt.Sprintf("%d expiries seen, at most %v after the holder's last renewal", s.N, r(s.MaxLatency))
	if s.Free > 0 {
		out += fmt.Sprintf("; %d without a fault window after the holder stopped, at most %v past the TTL", s.Free, r(s.OverTTL))
	}
	if s.N > s.Free {
		out += fmt.Sprintf("; %d with one, at most %v past the TTL and the window", s.N-s.Free, r(s.OverFaults))
	}
	w := s.Worst
	return out + fmt.Sprintf("; closest to its bound: lease %d, TTL %v, gone %v after its last renewal, of a bound of %v (faults %v)",
		w.ID, w.TTL, r(w.Latency), r(w.Bound), r(w.Faults))
}

func (s LeaseStats) String() string {
	ev := "none"
	if len(s.Evidence) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(s.Evidence)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, s.Evidence[k]))
		}
		ev = strings.Join(parts, ", ")
	}
	each := make([]string, len(s.Expiries))
	for i, e := range s.Expiries {
		each[i] = fmt.Sprintf("%v: %v", e.TTL, e.Latency.Round(time.Millisecond))
		if e.Faults > 0 {
			each[i] += fmt.Sprintf(" [%v]", e.Faults.Round(time.Millisecond))
		}
	}
	return fmt.Sprintf("%d leases (%d granted, %d stopped, %d lost to a 404); %d keep-alives (%d ok, %d 404); %d kept alive past their TTL, for %v in all; %d stopped leases without a key to show their end; deletes at one revision for %d; %v; first seen gone by: %s; each (TTL: gone after the last renewal [fault windows after it]): %s",
		s.Leases, s.Granted, s.Stopped, s.Lost, s.KeepAlives, s.KeepAlivesOK, s.KeepAlivesGone,
		s.Protected, s.ProtectedFor.Round(time.Millisecond), s.Unobserved, s.SharedRevision, Summary(s.Expiries), ev,
		strings.Join(each, ", "))
}

// CheckLeases checks the lease clients' runs of one round against the
// lease contract (docs/api.md, "Leases"), as a client can observe it:
//
//   - no early expiry: while the holder's keep-alives kept succeeding,
//     each answered before the previous success was sent plus the TTL
//     (the grant the first success), the lease lived: until the last such
//     success was sent plus the TTL (its horizon; a keep-alive renews the
//     lease when the leader takes it, after it was sent), no keep-alive
//     or put naming it was answered 404, no range read of its keys
//     answered without a key whose put with the lease had been
//     acknowledged before the read, and no watcher received a delete of
//     one of its keys;
//   - expiry in time: a lease whose holder stopped keeping it alive was
//     seen gone (first evidence: as above, or every member's list when
//     settling) within its TTL, plus an election timeout, plus the
//     lessor's tick, plus the part of the fault windows after the holder
//     stopped (a leader elected in one extends every lease by an
//     election timeout from then: the bound runs from the end of the
//     last window that began before the lease went);
//   - all at once: every watcher received its keys' deletes at one
//     revision, the same on every member, every key put with the lease
//     deleted then, none put after; no range read showed some of its
//     acknowledged keys present and others absent;
//   - the answers: the grant and every keep-alive answered with the
//     lease's id and its TTL granted (LeaseRun.Errors).
//
// It also returns the revocations as operations for the model.
func CheckLeases(h LeaseHistory) LeaseReport {
	rep := LeaseReport{Stats: LeaseStats{Evidence: make(map[string]int)}}
	byKey := make(map[string][]Op)
	for _, op := range h.Ops {
		byKey[op.Input.Key] = append(byKey[op.Input.Key], op)
	}
	for i := range h.Runs {
		checkLeaseRun(&h, &h.Runs[i], byKey, &rep)
	}
	return rep
}

// leaseEvidence is something that shows a lease gone by At.
type leaseEvidence struct {
	At   time.Duration
	Kind string // for the stats: "watch", "read", "keep-alive", "put", "settle"
	What string
}

func checkLeaseRun(h *LeaseHistory, r *LeaseRun, byKey map[string][]Op, rep *LeaseReport) {
	st := &rep.Stats
	st.Leases++
	name := fmt.Sprintf("lease %d (client %d, TTL %d s)", r.ID, r.Client, r.TTL)
	bad := func(format string, args ...any) {
		rep.Violations = append(rep.Violations, name+": "+fmt.Sprintf(format, args...))
	}
	for _, e := range r.Errors {
		bad("%s", e)
	}
	if !r.mayExist() {
		return
	}
	if r.Granted {
		st.Granted++
	}
	if r.Lost {
		st.Lost++
	}
	for _, ka := range r.KeepAlives {
		st.KeepAlives++
		switch {
		case ka.OK():
			st.KeepAlivesOK++
		case ka.Gone():
			st.KeepAlivesGone++
		}
	}
	ttl := time.Duration(r.TTL) * h.Bounds.Unit

	// What shows the lease gone, and by when.
	var evs []leaseEvidence
	for _, ka := range r.KeepAlives {
		if ka.Gone() {
			evs = append(evs, leaseEvidence{ka.Return, "keep-alive", fmt.Sprintf("a keep-alive sent at %v%s answered 404 at %v", ka.Call, through(ka), ka.Return)})
		}
	}
	acked := make(map[string]time.Duration) // each key's first acknowledged put with the lease, its return
	attached := make(map[string]bool)       // keys a put may have attached
	for _, key := range r.Keys {
		for _, op := range byKey[key] {
			if op.Input.Kind != OpPut || op.Input.Lease != r.ID {
				continue
			}
			switch {
			case op.Status == StatusOK && op.Output.Refused:
				evs = append(evs, leaseEvidence{op.Return, "put", fmt.Sprintf("a put of %q with it sent at %v answered 404 at %v", key, op.Call, op.Return)})
			case op.Status == StatusOK:
				if at, ok := acked[key]; !ok || op.Return < at {
					acked[key] = op.Return
				}
				attached[key] = true
			case op.Status == StatusUnknown:
				attached[key] = true
			}
		}
	}
	type readID struct{ call, ret time.Duration }
	reads := make(map[readID]map[string]bool) // the range reads after an acknowledged put: key → present
	for _, key := range r.Keys {
		for _, op := range byKey[key] {
			if op.Input.Kind != OpRangeGet || op.Status != StatusOK || op.Client != r.Client {
				continue
			}
			at, ok := acked[key]
			if !ok || at >= op.Call {
				continue
			}
			id := readID{op.Call, op.Return}
			if reads[id] == nil {
				reads[id] = make(map[string]bool)
			}
			reads[id][key] = op.Output.Found
			if !op.Output.Found {
				evs = append(evs, leaseEvidence{op.Return, "read", fmt.Sprintf("a range read sent at %v answered at %v without %q, put with it at %v", op.Call, op.Return, key, at)})
			}
		}
	}
	for _, id := range slices.SortedFunc(maps.Keys(reads), func(a, b readID) int { return cmp.Compare(a.call, b.call) }) {
		var in, out []string
		for _, key := range r.Keys {
			if present, ok := reads[id][key]; ok && present {
				in = append(in, key)
			} else if ok {
				out = append(out, key)
			}
		}
		if len(in) > 0 && len(out) > 0 {
			bad("a range read sent at %v shows %q present and %q absent: a lease's keys go at once", id.call, in, out)
		}
	}

	// The watchers: the keys' deletes, at one revision on every member.
	isKey := make(map[string]bool)
	for _, k := range r.Keys {
		isKey[k] = true
	}
	deletedAt := make(map[string]bool) // keys deleted at the revocation's revision, on some member
	var rev uint64
	for _, rec := range h.Records {
		dels := make(map[string]uint64)
		puts := make(map[string]uint64)
		for _, m := range rec.Msgs {
			for _, e := range m.Events {
				if !isKey[e.Key] {
					continue
				}
				if e.Type == "put" {
					puts[e.Key] = m.Revision
					continue
				}
				dels[e.Key] = m.Revision
				if !m.At.IsZero() && h.Since != nil {
					at := h.Since(m.At)
					evs = append(evs, leaseEvidence{at, "watch", fmt.Sprintf("member %d's watcher received the delete of %q (revision %d) at %v", rec.Member, e.Key, m.Revision, at)})
				}
			}
		}
		revs := slices.Sorted(maps.Values(dels))
		revs = slices.Compact(revs)
		switch {
		case len(revs) > 1:
			bad("member %d's watcher received its keys' deletes at revisions %v, not at one", rec.Member, revs)
		case len(revs) == 1 && rev != 0 && revs[0] != rev:
			bad("member %d's watcher received its keys' deletes at revision %d, another member's at %d", rec.Member, revs[0], rev)
		case len(revs) == 1:
			rev = revs[0]
		}
		for key, p := range puts {
			if d, ok := dels[key]; !ok || d < p {
				bad("member %d's watcher received a put of %q at revision %d and no delete after it: the key outlived the lease", rec.Member, key, p)
			}
		}
		for key, d := range dels {
			if len(revs) == 1 && d == revs[0] {
				deletedAt[key] = true
			}
		}
	}
	shared := rev != 0
	for _, key := range slices.Sorted(maps.Keys(acked)) {
		if len(h.Records) > 0 && !deletedAt[key] {
			bad("no watcher received the delete of %q, put with it", key)
			shared = false
		}
	}
	if shared {
		st.SharedRevision++
	}
	evs = append(evs, leaseEvidence{h.Settled, "settle", fmt.Sprintf("every member's list lacked it at %v", h.Settled)})
	gone := slices.MinFunc(evs, func(a, b leaseEvidence) int { return cmp.Compare(a.At, b.At) })

	// No early expiry: the horizon of the holder's unbroken keep-alives.
	if r.Granted {
		horizon := r.GrantCall + ttl
		last := "the grant"
		for _, ka := range r.KeepAlives {
			if !ka.OK() {
				continue
			}
			if ka.Return >= horizon {
				break // answered too late to be sure it renewed the lease in time
			}
			if ka.Call+ttl > horizon {
				horizon, last = ka.Call+ttl, fmt.Sprintf("the keep-alive sent at %v%s", ka.Call, through(ka))
			}
		}
		if horizon > r.GrantCall+ttl {
			st.Protected++
			st.ProtectedFor += horizon - r.GrantCall
		}
		var early []leaseEvidence
		for _, e := range evs {
			if e.Kind != "settle" && e.At < horizon {
				early = append(early, e)
			}
		}
		if len(early) > 0 {
			first := slices.MinFunc(early, func(a, b leaseEvidence) int { return cmp.Compare(a.At, b.At) })
			bad("expired early: %s, before %v, until when its holder had kept it alive (%s, answered in time, plus the TTL); %d such signs in all",
				first.What, horizon, last, len(early))
		}
	}

	// Expiry in time, for a lease its holder stopped: seen by its keys
	// (a lease without an acknowledged one may show its end to nobody
	// before the settling).
	if r.Stopped && r.Granted && !r.Lost {
		st.Stopped++
		if len(acked) == 0 && gone.Kind == "settle" {
			st.Unobserved++
		} else {
			checkExpiry(h, r, gone, ttl, st, bad)
		}
	}

	// The revocation, as the model sees it on each key.
	call := r.GrantCall
	if len(r.Grants) > 0 {
		call = r.Grants[0].Call
	}
	for _, key := range r.Keys {
		if !attached[key] {
			continue
		}
		out := Output{Rev: rev}
		if rev != 0 {
			out.Found = deletedAt[key]
		}
		rep.Revokes = append(rep.Revokes, Op{Client: r.Client, Input: Input{Kind: OpRevoke, Key: key, Lease: r.ID},
			Output: out, Call: call, Return: gone.At, Status: StatusOK})
	}
}

// through names the member a request went to, if known.
func through(c LeaseCall) string {
	if c.Endpoint == "" {
		return ""
	}
	return " to " + c.Endpoint
}

// checkExpiry checks that stopped lease r went (first seen: gone) within
// its bound.
func checkExpiry(h *LeaseHistory, r *LeaseRun, gone leaseEvidence, ttl time.Duration, st *LeaseStats, bad func(string, ...any)) {
	var lastWindow time.Duration
	for _, w := range h.Windows {
		if w.From < gone.At {
			lastWindow = max(lastWindow, w.To)
		}
	}
	faults := max(0, lastWindow-r.Stop)
	bound := ttl + h.Bounds.ElectionTimeout + h.Bounds.Tick + faults
	latency := gone.At - r.Stop
	st.Expiries = append(st.Expiries, LeaseExpiry{ID: r.ID, TTL: ttl, Latency: latency, Faults: faults, Bound: bound})
	st.Evidence[gone.Kind]++
	if latency > bound {
		bad("expired late: its holder stopped renewing it at %v, and it was seen gone only %v later (%s), over %v: the TTL, an election timeout (%v), the lessor's tick (%v) and the fault windows after the holder stopped (%v)",
			r.Stop, latency, gone.What, bound, h.Bounds.ElectionTimeout, h.Bounds.Tick, faults)
	}
}
