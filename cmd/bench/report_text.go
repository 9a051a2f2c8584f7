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
	if r.cfg.command != cmdPut {
		fmt.Fprintf(w, ", %s reads of %d keys", consistencyName(r.cfg.serializable), r.cfg.keys)
	}
	if r.cfg.command == cmdMixed {
		fmt.Fprintf(w, ", read ratio %g", r.cfg.readRatio)
	}
	fmt.Fprintf(w, "\nDuration:    %s\n", r.elapsed.Round(time.Millisecond))
	writeSection(w, "", r.all(), r.elapsed)
	if r.cfg.command == cmdMixed {
		writeSection(w, "Reads", r.reads, r.elapsed)
		writeSection(w, "Writes", r.writes, r.elapsed)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	return nil
}

func writeSection(w io.Writer, title string, s *opStats, elapsed time.Duration) {
	indent := ""
	if title != "" {
		fmt.Fprintf(w, "\n%s:\n", title)
		indent = "  "
	}
	fmt.Fprintf(w, "%sOps:         %d acknowledged of %d requests\n", indent, s.ok, s.requests())
	fmt.Fprintf(w, "%sThroughput:  %.1f ops/s\n", indent, perSecond(s.ok, elapsed))
	fmt.Fprintf(w, "%sErrors:      %s\n", indent, errorLine(&s.errors))
	h := s.lat
	fmt.Fprintf(w, "%sLatency (ms): min %s  mean %s  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n", indent,
		millis(h.minimum()), millis(h.mean()), millis(h.quantile(0.50)), millis(h.quantile(0.90)),
		millis(h.quantile(0.99)), millis(h.quantile(0.999)), millis(h.maximum()))
	rows := h.rows()
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "%sLatency histogram:\n", indent)
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
func errorLine(e *errorCounts) string {
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
	fmt.Fprintf(&b, ", transport: %d, bad reply: %d)", e.transport, e.badReply)
	return b.String()
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
