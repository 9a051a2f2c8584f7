package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// obj is a JSON object that keeps its fields in the order they were added,
// so that the report is built in one pass, each field where it belongs.
type obj []field

type field struct {
	name  string
	value any
}

func (o obj) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, f := range o {
		v, err := json.Marshal(f.value)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(append(strconv.AppendQuote(b, f.name), ':'), v...)
	}
	return append(b, '}'), nil
}

// writeJSON prints the report as one JSON object, latencies in
// microseconds: the same numbers as writeText.
func writeJSON(out io.Writer, r *result) error {
	cfg, all := r.cfg, r.all()
	rep := obj{{"command", cfg.command}, {"run_id", cfg.runID}, {"target", cfg.target}, {"endpoints", r.endpoints},
		{"clients", cfg.clients}, {"value_size", cfg.valSize}}
	switch cfg.command {
	case cmdGet, cmdMixed, cmdRange:
		rep = append(rep, field{"consistency", consistencyName(cfg.serializable)}, field{"keys", cfg.keys})
	case cmdCAS:
		rep = append(rep, field{"keys", cfg.keys})
	}
	if cfg.command == cmdMixed {
		rep = append(rep, field{"read_ratio", cfg.readRatio})
	}
	rep = append(rep, field{"duration_seconds", r.elapsed.Seconds()})
	switch cfg.command {
	case cmdCAS:
		rep = append(rep, field{"contention", cfg.contention})
	case cmdTxn:
		rep = append(rep, field{"txn_ops", cfg.txnOps}, field{"compare", cfg.txnCompare})
	case cmdRange:
		rep = append(rep, field{"range_limit", cfg.rangeLimit}, field{"keys_only", cfg.keysOnly},
			field{"keys_read", r.reads.items}, field{"keys_per_second", perSecond(r.reads.items, r.elapsed)})
	}
	rep = append(rep, jsonSection(all, r)...)
	switch {
	case cfg.command == cmdMixed:
		rep = append(rep, field{"reads", jsonSection(r.reads, r)}, field{"writes", jsonSection(r.writes, r)})
	case r.refused != nil: // both are in ops
		rep = append(rep, field{"written", jsonSection(r.writes, r)}, field{"refused", jsonSection(r.refused, r)},
			field{"refused_share", ratio(r.refused.ok(), all.ok())})
	case r.watch != nil:
		rep = append(rep, field{"watch", jsonWatch(r.watch)})
	case r.leases != nil:
		rep = append(rep, field{"leases", jsonLeases(cfg, r.leases)})
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return fmt.Errorf("writing the JSON report: %w", err)
	}
	return nil
}

// jsonSection is one kind of operation; ops are the acknowledged ones.
func jsonSection(s *opStats, r *result) obj {
	return obj{{"requests", s.requests()}, {"ops", s.ok()}, {"ops_per_second", perSecond(s.ok(), r.elapsed)},
		{"errors", jsonErrors(s, r.cfg.command)}, {"latency_us", jsonLatency(s.lat)}, {"histogram", jsonHistogram(s.lat)}}
}

// errorKinds name the errors in both reports, in their order; a kind of
// one command only is reported for it alone.
var errorKinds = []struct {
	o          outcome
	json, text string
	only       command
}{
	{outcomeUnavailable, "unavailable_503", "503 no leader", ""},
	{outcomeTimeout, "timeout_504", "504 timeout", ""},
	{outcomeStatus, "other_status", "other status", ""}, // with the statuses by code
	{outcomeTransport, "transport", "transport", ""},
	{outcomeBadReply, "bad_reply", "bad reply", ""},
	{outcomeConflict, "precondition_failed_412", "412 precondition failed", cmdCAS},
	{outcomeConflict, "compare_failed", "compare failed", cmdTxn},
	{outcomeShort, "short_range", "short range", cmdRange},
}

func jsonErrors(e *opStats, cmd command) obj {
	o := obj{{"total", e.errors()}}
	for _, k := range errorKinds {
		if k.only == "" || k.only == cmd {
			o = append(o, field{k.json, e.n[k.o]})
		}
	}
	if len(e.byStatus) > 0 {
		o = append(o, field{"by_status", e.byStatus})
	}
	return o
}

func jsonLatency(h *histogram) obj {
	return obj{{"min", micros(h.minimum())}, {"mean", micros(h.mean())}, {"p50", micros(h.quantile(0.50))},
		{"p90", micros(h.quantile(0.90))}, {"p99", micros(h.quantile(0.99))}, {"p99_9", micros(h.quantile(0.999))},
		{"max", micros(h.maximum())}}
}

// jsonHistogram gives the rows of h: the operations with latency in
// [from, to).
func jsonHistogram(h *histogram) []obj {
	out := []obj{}
	for _, row := range h.rows() {
		out = append(out, obj{{"from_us", micros(row.from)}, {"to_us", micros(row.to)}, {"count", row.count}})
	}
	return out
}

// jsonWatch is what the watchers measured; a delivery is one watcher
// receiving the event of one acknowledged write.
func jsonWatch(s *watchStats) obj {
	o := obj{{"watchers", s.asked}, {"opened", s.opened}}
	if s.opened < s.asked {
		o = append(o, field{"open_errors", jsonErrors(&s.openErrors, cmdWatch)})
	}
	return append(o, obj{{"acked_writes", s.acked}, {"expected_deliveries", s.acked * uint64(s.opened)},
		{"delivered", s.delivered}, {"delivered_before_ack", s.early}, {"missed", s.missed},
		{"missed_on_open_streams", s.missedOpen}, {"ended_early", s.endedEarly()}, {"ended_by_reason", s.ended},
		{"duplicates", s.n[evDup]}, {"out_of_order", s.n[evDisorder]}, {"wrong_revision", s.n[evWrongRev]},
		{"bad_data", s.n[evBadData]}, {"unknown_event_types", s.n[evOtherType]}, {"unacked_delivered", s.unacked},
		{"other_keys", s.n[evForeign]}, {"progress_marks", s.n[evProgress]}, {"caught_up", s.settled},
		{"caught_up_seconds", s.caughtUp.Seconds()}, // after the writers stopped; the grace waited when not caught up
		{"delay_us", jsonLatency(s.delay)}, {"delay_histogram", jsonHistogram(s.delay)}}...)
}

// writeText prints the report for a reader: what ran, a section of all
// operations, and the parts of the run that its command gives apart.
func writeText(out io.Writer, r *result) error {
	cfg, all := r.cfg, r.all()
	w := bufio.NewWriter(out)
	fmt.Fprintf(w, "%s (run %s): %d clients, target %s (%s), %d-byte values",
		cfg.command, cfg.runID, cfg.clients, cfg.target, strings.Join(r.endpoints, ", "), cfg.valSize)
	switch cfg.command {
	case cmdGet, cmdMixed:
		fmt.Fprintf(w, ", %s reads of %d keys", consistencyName(cfg.serializable), cfg.keys)
	case cmdRange:
		fmt.Fprintf(w, ", %s range reads of %d keys, limit %d", consistencyName(cfg.serializable), cfg.keys, cfg.rangeLimit)
		if cfg.keysOnly {
			w.WriteString(", keys only")
		}
	case cmdCAS:
		fmt.Fprintf(w, ", %d keys, %d clients per key", cfg.keys, cfg.contention)
	case cmdTxn:
		fmt.Fprintf(w, ", %d puts per transaction, %s", cfg.txnOps,
			map[bool]string{true: "guarded by a mod_revision compare", false: "no compare"}[cfg.txnCompare])
	case cmdWatch:
		fmt.Fprintf(w, ", %d watchers over %s", cfg.watchers, strings.Join(cfg.endpoints, ", "))
	}
	if cfg.command == cmdMixed {
		fmt.Fprintf(w, ", read ratio %g", cfg.readRatio)
	}
	fmt.Fprintf(w, "\nDuration:    %s\n", r.elapsed.Round(time.Millisecond))
	section := func(title string, s *opStats, done string) {
		indent := ""
		if title != "" {
			fmt.Fprintf(w, "\n%s:\n", title)
			indent = "  "
		}
		fmt.Fprintf(w, "%sOps:         %d %s of %d requests\n", indent, s.ok(), done, s.requests())
		fmt.Fprintf(w, "%sThroughput:  %.1f ops/s\n", indent, perSecond(s.ok(), r.elapsed))
		if cfg.command == cmdRange {
			fmt.Fprintf(w, "%sKeys read:   %d (%.1f keys/s)\n", indent, s.items, perSecond(s.items, r.elapsed))
		}
		fmt.Fprintf(w, "%sErrors:      %s\n", indent, errorLine(s, cfg.command))
		writeLatency(w, indent, "Latency", s.lat)
	}
	switch {
	case cfg.command == cmdMixed:
		section("", all, "acknowledged")
		section("Reads", r.reads, "acknowledged")
		section("Writes", r.writes, "acknowledged")
	case r.refused != nil:
		section("", all, "completed") // the 412s under contention are among them
		fmt.Fprintf(w, "Refused:     %d of %d completed were 412 (%.1f%%), as expected under contention\n",
			r.refused.ok(), all.ok(), 100*ratio(r.refused.ok(), all.ok()))
		section("Written (200)", r.writes, "acknowledged")
		section("Refused (412)", r.refused, "answered 412")
	default:
		section("", all, "acknowledged")
	}
	if r.watch != nil {
		writeWatch(w, r.watch)
	}
	if r.leases != nil {
		writeLeases(w, cfg, r.leases)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	return nil
}

// writeLatency prints the quantiles and the histogram of h.
func writeLatency(w io.Writer, indent, what string, h *histogram) {
	ms := func(d time.Duration) string {
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 3, 64)
	}
	fmt.Fprintf(w, "%s%s (ms): min %s  mean %s  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n", indent, what,
		ms(h.minimum()), ms(h.mean()), ms(h.quantile(0.50)), ms(h.quantile(0.90)),
		ms(h.quantile(0.99)), ms(h.quantile(0.999)), ms(h.maximum()))
	rows := h.rows()
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "%s%s histogram:\n", indent, what)
	var most uint64
	for _, row := range rows {
		most = max(most, row.count)
	}
	for _, row := range rows {
		n := int(row.count * 40 / most)
		if n == 0 && row.count > 0 {
			n = 1 // a rare latency must still show
		}
		fmt.Fprintf(w, "%s  %7s - %-7s |%-40s| %d\n", indent, edgeLabel(row.from), edgeLabel(row.to), strings.Repeat("#", n), row.count)
	}
}

// errorLine is the error total with its kinds, and the statuses other
// than 503 and 504 by code.
func errorLine(e *opStats, cmd command) string {
	var parts []string
	for _, k := range errorKinds {
		if k.only == "" || k.only == cmd {
			parts = append(parts, fmt.Sprintf("%s: %d", k.text, e.n[k.o]))
		}
		if k.o == outcomeStatus && len(e.byStatus) > 0 {
			parts[len(parts)-1] += " [" + joinCounts(e.byStatus) + "]"
		}
	}
	return fmt.Sprintf("%d (%s)", e.errors(), strings.Join(parts, ", "))
}

// joinCounts is "k: n, …" in the order of the keys.
func joinCounts[K int | string](m map[K]uint64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%v: %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// writeWatch prints what the watchers measured.
func writeWatch(w io.Writer, s *watchStats) {
	fmt.Fprintf(w, "\nWatch:\n  Watchers:    %d opened of %d", s.opened, s.asked)
	if s.opened < s.asked {
		fmt.Fprintf(w, "; the others: %s; first: %s", errorLine(&s.openErrors, cmdWatch), s.openCause)
	}
	fmt.Fprintf(w, "\n  Deliveries:  %d of %d (%d acknowledged writes × %d watchers); %d came before the acknowledgement (delay 0)\n",
		s.delivered, s.acked*uint64(s.opened), s.acked, s.opened, s.early)
	fmt.Fprintf(w, "  Missed:      %d (%d on streams open to the end)\n", s.missed, s.missedOpen)
	fmt.Fprintf(w, "  Ended early: %d", s.endedEarly())
	if len(s.ended) > 0 {
		fmt.Fprintf(w, " (%s)", joinCounts(s.ended))
	}
	fmt.Fprintf(w, "\n  Anomalies:   duplicates %d, out of order %d, wrong revision %d, bad data %d, unknown event types %d\n",
		s.n[evDup], s.n[evDisorder], s.n[evWrongRev], s.n[evBadData], s.n[evOtherType])
	fmt.Fprintf(w, "  Other:       %d deliveries of unacknowledged writes, %d events of other keys, %d progress marks\n",
		s.unacked, s.n[evForeign], s.n[evProgress])
	if s.settled {
		fmt.Fprintf(w, "  Caught up:   %s after the writers stopped\n", s.caughtUp.Round(time.Millisecond))
	} else {
		fmt.Fprintf(w, "  Caught up:   no: waited %s after the writers stopped (--watch-grace)\n", s.caughtUp.Round(time.Millisecond))
	}
	writeLatency(w, "  ", "Delay", s.delay)
}

// edgeLabel prints an edge of the 1-2-5 series in the largest unit that
// keeps it whole: 500µs, 1ms, 20ms.
func edgeLabel(d time.Duration) string {
	for _, u := range []time.Duration{time.Second, time.Millisecond, time.Microsecond} {
		if d >= u && d%u == 0 {
			return strconv.FormatInt(int64(d/u), 10) + strings.TrimPrefix(u.String(), "1")
		}
	}
	return strconv.FormatInt(int64(d), 10) + "ns"
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func perSecond(n uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func ratio(n, d uint64) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / float64(d)
}

func consistencyName(serializable bool) string {
	if serializable {
		return "serializable"
	}
	return "linearizable"
}
