package main

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

const histBarWidth = 40

// writeText prints the human report: a summary of all operations, and for
// mixed runs the reads and the writes apart.
func writeText(out io.Writer, r *result) error {
	w := bufio.NewWriter(out)
	fmt.Fprintf(w, "%s (run %s): %d clients, target %s (%s), %d-byte values",
		r.cfg.command, r.cfg.runID, r.cfg.clients, r.cfg.target, strings.Join(r.endpoints, ", "), r.cfg.valSize)
	cmd := r.cfg.command
	switch cmd {
	case cmdGet, cmdMixed:
		fmt.Fprintf(w, ", %s reads of %d keys", consistencyName(r.cfg.serializable), r.cfg.keys)
	case cmdRange:
		fmt.Fprintf(w, ", %s range reads of %d keys, limit %d", consistencyName(r.cfg.serializable), r.cfg.keys, r.cfg.rangeLimit)
		if r.cfg.keysOnly {
			w.WriteString(", keys only")
		}
	case cmdCAS:
		fmt.Fprintf(w, ", %d keys, %d clients per key", r.cfg.keys, r.cfg.contention)
	case cmdTxn:
		fmt.Fprintf(w, ", %d puts per transaction, ", r.cfg.txnOps)
		if r.cfg.txnCompare {
			w.WriteString("guarded by a mod_revision compare")
		} else {
			w.WriteString("no compare")
		}
	case cmdWatch:
		fmt.Fprintf(w, ", %d watchers over %s", r.cfg.watchers, strings.Join(r.cfg.endpoints, ", "))
	}
	if cmd == cmdMixed {
		fmt.Fprintf(w, ", read ratio %g", r.cfg.readRatio)
	}
	fmt.Fprintf(w, "\nDuration:    %s\n", r.elapsed.Round(time.Millisecond))
	done := "acknowledged"
	if r.refused != nil {
		done = "completed"
	}
	writeSection(w, "", r.all(), r.elapsed, cmd, done)
	switch {
	case cmd == cmdMixed:
		writeSection(w, "Reads", r.reads, r.elapsed, cmd, "acknowledged")
		writeSection(w, "Writes", r.writes, r.elapsed, cmd, "acknowledged")
	case r.refused != nil:
		fmt.Fprintf(w, "Refused:     %d of %d completed were 412 (%.1f%%), as expected under contention\n",
			r.refused.ok, r.all().ok, 100*ratio(r.refused.ok, r.all().ok))
		writeSection(w, "Written (200)", r.writes, r.elapsed, cmd, "acknowledged")
		writeSection(w, "Refused (412)", r.refused, r.elapsed, cmd, "answered 412")
	case r.watch != nil:
		writeWatch(w, r.watch)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	return nil
}

// done names the operations counted: "acknowledged", or "completed" where
// 412s under contention are among them.
func writeSection(w io.Writer, title string, s *opStats, elapsed time.Duration, cmd command, done string) {
	indent := ""
	if title != "" {
		fmt.Fprintf(w, "\n%s:\n", title)
		indent = "  "
	}
	fmt.Fprintf(w, "%sOps:         %d %s of %d requests\n", indent, s.ok, done, s.requests())
	fmt.Fprintf(w, "%sThroughput:  %.1f ops/s\n", indent, perSecond(s.ok, elapsed))
	if cmd == cmdRange {
		fmt.Fprintf(w, "%sKeys read:   %d (%.1f keys/s)\n", indent, s.items, perSecond(s.items, elapsed))
	}
	fmt.Fprintf(w, "%sErrors:      %s\n", indent, errorLine(&s.errors, cmd))
	writeLatency(w, indent, "Latency", s.lat)
}

// writeLatency prints the quantiles and the histogram of h.
func writeLatency(w io.Writer, indent, what string, h *histogram) {
	fmt.Fprintf(w, "%s%s (ms): min %s  mean %s  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n", indent, what,
		millis(h.minimum()), millis(h.mean()), millis(h.quantile(0.50)), millis(h.quantile(0.90)),
		millis(h.quantile(0.99)), millis(h.quantile(0.999)), millis(h.maximum()))
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
		n := int(row.count * histBarWidth / most)
		if n == 0 && row.count > 0 {
			n = 1 // a rare latency must still show
		}
		fmt.Fprintf(w, "%s  %7s - %-7s |%-*s| %d\n", indent,
			edgeLabel(row.from), edgeLabel(row.to), histBarWidth, strings.Repeat("#", n), row.count)
	}
}

// errorLine is the error total with its kinds; statuses other than 503 and
// 504 are listed by code.
func errorLine(e *errorCounts, cmd command) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d (503 no leader: %d, 504 timeout: %d, other status: %d",
		e.total(), e.unavailable, e.timeout, e.otherStatus)
	if len(e.byStatus) > 0 {
		b.WriteString(" [")
		for i, code := range slices.Sorted(maps.Keys(e.byStatus)) {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%d: %d", code, e.byStatus[code])
		}
		b.WriteString("]")
	}
	fmt.Fprintf(&b, ", transport: %d, bad reply: %d", e.transport, e.badReply)
	switch cmd {
	case cmdCAS:
		fmt.Fprintf(&b, ", 412 precondition failed: %d", e.conflict)
	case cmdTxn:
		fmt.Fprintf(&b, ", compare failed: %d", e.conflict)
	case cmdRange:
		fmt.Fprintf(&b, ", short range: %d", e.short)
	}
	b.WriteString(")")
	return b.String()
}

// writeWatch prints what the watchers measured.
func writeWatch(w io.Writer, s *watchStats) {
	fmt.Fprintf(w, "\nWatch:\n")
	fmt.Fprintf(w, "  Watchers:    %d opened of %d", s.opened, s.asked)
	if s.opened < s.asked {
		fmt.Fprintf(w, "; the others: %s; first: %s", errorLine(&s.openErrors, cmdWatch), s.openCause)
	}
	expected := s.acked * uint64(s.opened)
	fmt.Fprintf(w, "\n  Deliveries:  %d of %d (%d acknowledged writes × %d watchers); %d came before the acknowledgement (delay 0)\n",
		s.delivered, expected, s.acked, s.opened, s.early)
	fmt.Fprintf(w, "  Missed:      %d (%d on streams open to the end)\n", s.missed, s.missedOpen)
	fmt.Fprintf(w, "  Ended early: %d", s.endedEarly())
	if len(s.ended) > 0 {
		fmt.Fprint(w, " (")
		for i, reason := range slices.Sorted(maps.Keys(s.ended)) {
			if i > 0 {
				fmt.Fprint(w, ", ")
			}
			fmt.Fprintf(w, "%s: %d", reason, s.ended[reason])
		}
		fmt.Fprint(w, ")")
	}
	fmt.Fprintf(w, "\n  Anomalies:   duplicates %d, out of order %d, wrong revision %d, bad data %d, unknown event types %d\n",
		s.dup, s.disorder, s.wrongRev, s.badData, s.otherType)
	fmt.Fprintf(w, "  Other:       %d deliveries of unacknowledged writes, %d events of other keys, %d progress marks\n",
		s.unacked, s.foreign, s.progress)
	if s.settled {
		fmt.Fprintf(w, "  Caught up:   %s after the writers stopped\n", s.caughtUp.Round(time.Millisecond))
	} else {
		fmt.Fprintf(w, "  Caught up:   no: waited %s after the writers stopped (--watch-grace)\n", s.caughtUp.Round(time.Millisecond))
	}
	writeLatency(w, "  ", "Delay", s.delay)
}

func ratio(n, d uint64) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / float64(d)
}

func millis(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 3, 64)
}

// edgeLabel prints an edge of the 1-2-5 series in the largest unit that
// keeps it whole: 500µs, 1ms, 20ms.
func edgeLabel(d time.Duration) string {
	units := []struct {
		size time.Duration
		name string
	}{{time.Second, "s"}, {time.Millisecond, "ms"}, {time.Microsecond, "µs"}}
	for _, u := range units {
		if d >= u.size && d%u.size == 0 {
			return strconv.FormatInt(int64(d/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(d), 10) + "ns"
}
