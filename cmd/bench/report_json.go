package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// jsonReport is the --json output: one object, latencies in microseconds.
type jsonReport struct {
	Command         string   `json:"command"`
	RunID           string   `json:"run_id"` // in every key of the run
	Target          string   `json:"target"`
	Endpoints       []string `json:"endpoints"`
	Clients         int      `json:"clients"`
	ValueSize       int      `json:"value_size"`
	Consistency     string   `json:"consistency,omitempty"`
	Keys            int      `json:"keys,omitempty"`
	ReadRatio       *float64 `json:"read_ratio,omitempty"`
	DurationSeconds float64  `json:"duration_seconds"`
	// cas
	Contention int `json:"contention,omitempty"`
	// txn
	TxnOps  int   `json:"txn_ops,omitempty"`
	Compare *bool `json:"compare,omitempty"`
	// range
	RangeLimit    int      `json:"range_limit,omitempty"`
	KeysOnly      *bool    `json:"keys_only,omitempty"`
	KeysRead      *uint64  `json:"keys_read,omitempty"`
	KeysPerSecond *float64 `json:"keys_per_second,omitempty"`
	jsonSection
	// Mixed runs also give reads and writes apart.
	Reads  *jsonSection `json:"reads,omitempty"`
	Writes *jsonSection `json:"writes,omitempty"`
	// cas under contention gives the 200s and the 412s apart; both are
	// in ops.
	Written      *jsonSection `json:"written,omitempty"`
	Refused      *jsonSection `json:"refused,omitempty"`
	RefusedShare *float64     `json:"refused_share,omitempty"`
	Watch        *jsonWatch   `json:"watch,omitempty"`
}

// jsonWatch is what the watchers of a watch run measured; a delivery is
// one watcher receiving the event of one acknowledged write.
type jsonWatch struct {
	Watchers           int               `json:"watchers"`
	Opened             int               `json:"opened"`
	OpenErrors         *jsonErrors       `json:"open_errors,omitempty"`
	AckedWrites        uint64            `json:"acked_writes"`
	ExpectedDeliveries uint64            `json:"expected_deliveries"` // acked_writes × opened
	Delivered          uint64            `json:"delivered"`
	DeliveredEarly     uint64            `json:"delivered_before_ack"` // their delay is 0
	Missed             uint64            `json:"missed"`
	MissedOpen         uint64            `json:"missed_on_open_streams"`
	EndedEarly         uint64            `json:"ended_early"`
	EndedBy            map[string]uint64 `json:"ended_by_reason"`
	Duplicates         uint64            `json:"duplicates"`
	OutOfOrder         uint64            `json:"out_of_order"`
	WrongRevision      uint64            `json:"wrong_revision"`
	BadData            uint64            `json:"bad_data"`
	UnknownEventTypes  uint64            `json:"unknown_event_types"`
	UnackedDelivered   uint64            `json:"unacked_delivered"`
	OtherKeys          uint64            `json:"other_keys"`
	ProgressMarks      uint64            `json:"progress_marks"`
	CaughtUp           bool              `json:"caught_up"`
	CaughtUpSeconds    float64           `json:"caught_up_seconds"` // after the writers stopped; the grace waited when not caught up
	DelayUS            jsonLatency       `json:"delay_us"`
	DelayHistogram     []jsonBucket      `json:"delay_histogram"`
}

type jsonSection struct {
	Requests     uint64       `json:"requests"`
	Ops          uint64       `json:"ops"` // acknowledged
	OpsPerSecond float64      `json:"ops_per_second"`
	Errors       jsonErrors   `json:"errors"`
	LatencyUS    jsonLatency  `json:"latency_us"`
	Histogram    []jsonBucket `json:"histogram"`
}

type jsonErrors struct {
	Total          uint64 `json:"total"`
	Unavailable503 uint64 `json:"unavailable_503"`
	Timeout504     uint64 `json:"timeout_504"`
	OtherStatus    uint64 `json:"other_status"`
	Transport      uint64 `json:"transport"`
	BadReply       uint64 `json:"bad_reply"`
	// Of the commands that have them: cas, txn (compare failed), range.
	PreconditionFailed *uint64        `json:"precondition_failed_412,omitempty"`
	CompareFailed      *uint64        `json:"compare_failed,omitempty"`
	ShortRange         *uint64        `json:"short_range,omitempty"`
	ByStatus           map[int]uint64 `json:"by_status,omitempty"`
}

type jsonLatency struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

// jsonBucket holds the acknowledged operations with latency in [from, to).
type jsonBucket struct {
	FromUS float64 `json:"from_us"`
	ToUS   float64 `json:"to_us"`
	Count  uint64  `json:"count"`
}

func writeJSON(out io.Writer, r *result) error {
	rep := jsonReport{
		Command:         string(r.cfg.command),
		RunID:           r.cfg.runID,
		Target:          string(r.cfg.target),
		Endpoints:       r.endpoints,
		Clients:         r.cfg.clients,
		ValueSize:       r.cfg.valSize,
		DurationSeconds: r.elapsed.Seconds(),
		jsonSection:     newJSONSection(r.all(), r.elapsed, r.cfg.command),
	}
	cmd := r.cfg.command
	section := func(s *opStats) *jsonSection {
		sec := newJSONSection(s, r.elapsed, cmd)
		return &sec
	}
	switch cmd {
	case cmdGet, cmdMixed, cmdRange:
		rep.Consistency = consistencyName(r.cfg.serializable)
		rep.Keys = r.cfg.keys
	case cmdCAS:
		rep.Keys = r.cfg.keys
		rep.Contention = r.cfg.contention
	case cmdTxn:
		rep.TxnOps = r.cfg.txnOps
		rep.Compare = &r.cfg.txnCompare
	}
	switch {
	case cmd == cmdMixed:
		ratio := r.cfg.readRatio
		rep.ReadRatio = &ratio
		rep.Reads, rep.Writes = section(r.reads), section(r.writes)
	case cmd == cmdRange:
		rep.RangeLimit = r.cfg.rangeLimit
		rep.KeysOnly = &r.cfg.keysOnly
		keys, rate := r.reads.items, perSecond(r.reads.items, r.elapsed)
		rep.KeysRead, rep.KeysPerSecond = &keys, &rate
	case r.refused != nil:
		share := ratio(r.refused.ok, r.all().ok)
		rep.Written, rep.Refused, rep.RefusedShare = section(r.writes), section(r.refused), &share
	case r.watch != nil:
		rep.Watch = newJSONWatch(r.watch)
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return fmt.Errorf("writing the JSON report: %w", err)
	}
	return nil
}

func newJSONSection(s *opStats, elapsed time.Duration, cmd command) jsonSection {
	return jsonSection{
		Requests:     s.requests(),
		Ops:          s.ok,
		OpsPerSecond: perSecond(s.ok, elapsed),
		Errors:       newJSONErrors(&s.errors, cmd),
		LatencyUS:    newJSONLatency(s.lat),
		Histogram:    newJSONHistogram(s.lat),
	}
}

func newJSONErrors(e *errorCounts, cmd command) jsonErrors {
	je := jsonErrors{
		Total:          e.total(),
		Unavailable503: e.unavailable,
		Timeout504:     e.timeout,
		OtherStatus:    e.otherStatus,
		Transport:      e.transport,
		BadReply:       e.badReply,
		ByStatus:       e.byStatus,
	}
	conflict, short := e.conflict, e.short
	switch cmd {
	case cmdCAS:
		je.PreconditionFailed = &conflict
	case cmdTxn:
		je.CompareFailed = &conflict
	case cmdRange:
		je.ShortRange = &short
	}
	return je
}

func newJSONLatency(h *histogram) jsonLatency {
	return jsonLatency{
		Min:  micros(h.minimum()),
		Mean: micros(h.mean()),
		P50:  micros(h.quantile(0.50)),
		P90:  micros(h.quantile(0.90)),
		P99:  micros(h.quantile(0.99)),
		P999: micros(h.quantile(0.999)),
		Max:  micros(h.maximum()),
	}
}

func newJSONHistogram(h *histogram) []jsonBucket {
	out := []jsonBucket{}
	for _, row := range h.rows() {
		out = append(out, jsonBucket{FromUS: micros(row.from), ToUS: micros(row.to), Count: row.count})
	}
	return out
}

func newJSONWatch(s *watchStats) *jsonWatch {
	jw := &jsonWatch{
		Watchers:           s.asked,
		Opened:             s.opened,
		AckedWrites:        s.acked,
		ExpectedDeliveries: s.acked * uint64(s.opened),
		Delivered:          s.delivered,
		DeliveredEarly:     s.early,
		Missed:             s.missed,
		MissedOpen:         s.missedOpen,
		EndedEarly:         s.endedEarly(),
		EndedBy:            s.ended,
		Duplicates:         s.dup,
		OutOfOrder:         s.disorder,
		WrongRevision:      s.wrongRev,
		BadData:            s.badData,
		UnknownEventTypes:  s.otherType,
		UnackedDelivered:   s.unacked,
		OtherKeys:          s.foreign,
		ProgressMarks:      s.progress,
		CaughtUp:           s.settled,
		CaughtUpSeconds:    s.caughtUp.Seconds(),
		DelayUS:            newJSONLatency(s.delay),
		DelayHistogram:     newJSONHistogram(s.delay),
	}
	if s.opened < s.asked {
		oe := newJSONErrors(&s.openErrors, cmdWatch)
		jw.OpenErrors = &oe
	}
	return jw
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func perSecond(n uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func consistencyName(serializable bool) string {
	if serializable {
		return "serializable"
	}
	return "linearizable"
}
