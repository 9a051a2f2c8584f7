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
	jsonSection
	// Mixed runs also give reads and writes apart.
	Reads  *jsonSection `json:"reads,omitempty"`
	Writes *jsonSection `json:"writes,omitempty"`
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
	Total          uint64         `json:"total"`
	Unavailable503 uint64         `json:"unavailable_503"`
	Timeout504     uint64         `json:"timeout_504"`
	OtherStatus    uint64         `json:"other_status"`
	Transport      uint64         `json:"transport"`
	BadReply       uint64         `json:"bad_reply"`
	ByStatus       map[int]uint64 `json:"by_status,omitempty"`
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
		jsonSection:     newJSONSection(r.all(), r.elapsed),
	}
	if r.cfg.command != cmdPut {
		rep.Consistency = consistencyName(r.cfg.serializable)
		rep.Keys = r.cfg.keys
	}
	if r.cfg.command == cmdMixed {
		ratio := r.cfg.readRatio
		rep.ReadRatio = &ratio
		reads, writes := newJSONSection(r.reads, r.elapsed), newJSONSection(r.writes, r.elapsed)
		rep.Reads, rep.Writes = &reads, &writes
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return fmt.Errorf("writing the JSON report: %w", err)
	}
	return nil
}

func newJSONSection(s *opStats, elapsed time.Duration) jsonSection {
	sec := jsonSection{
		Requests:     s.requests(),
		Ops:          s.ok,
		OpsPerSecond: perSecond(s.ok, elapsed),
		Errors: jsonErrors{
			Total:          s.errors.total(),
			Unavailable503: s.errors.unavailable,
			Timeout504:     s.errors.timeout,
			OtherStatus:    s.errors.otherStatus,
			Transport:      s.errors.transport,
			BadReply:       s.errors.badReply,
			ByStatus:       s.errors.byStatus,
		},
		LatencyUS: jsonLatency{
			Min:  micros(s.lat.minimum()),
			Mean: micros(s.lat.mean()),
			P50:  micros(s.lat.quantile(0.50)),
			P90:  micros(s.lat.quantile(0.90)),
			P99:  micros(s.lat.quantile(0.99)),
			P999: micros(s.lat.quantile(0.999)),
			Max:  micros(s.lat.maximum()),
		},
		Histogram: []jsonBucket{},
	}
	for _, row := range s.lat.rows() {
		sec.Histogram = append(sec.Histogram, jsonBucket{FromUS: micros(row.from), ToUS: micros(row.to), Count: row.count})
	}
	return sec
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
