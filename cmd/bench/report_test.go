package main

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// knownResult is a result with hand-picked numbers, so the report's text
// can be checked exactly.
func knownResult() *result {
	writes := newOpStats()
	for range 3 {
		writes.add(outcomeOK, 200, 150*time.Microsecond)
	}
	writes.add(outcomeOK, 200, 3*time.Millisecond)
	writes.add(outcomeUnavailable, 503, 0)
	writes.add(outcomeTimeout, 504, 0)
	writes.add(outcomeStatus, 500, 0)
	writes.add(outcomeStatus, 500, 0)
	writes.add(outcomeStatus, 413, 0)
	writes.add(outcomeTransport, 0, 0)
	cfg := testConfig(cmdPut, 10, "http://a:1")
	return &result{cfg: cfg, endpoints: cfg.endpoints, elapsed: 2 * time.Second, writes: writes}
}

func TestTextReport(t *testing.T) {
	var buf bytes.Buffer
	if err := writeText(&buf, knownResult()); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"put (run t1): 4 clients, target spread (http://a:1), 100-byte values\n",
		"Duration:    2s\n",
		"Ops:         4 acknowledged of 10 requests\n",
		"Throughput:  2.0 ops/s\n",
		"Errors:      6 (503 no leader: 1, 504 timeout: 1, other status: 3 [413: 1, 500: 2], transport: 1, bad reply: 0)\n",
		// mean (3·150µs + 3ms)/4 = 862.5µs; p50 is the top of 150µs's
		// bucket: shift 10, [146<<10, 147<<10 - 1] = [149,504, 150,527];
		// p90 and up are the max.
		"Latency (ms): min 0.150  mean 0.863  p50 0.151  p90 3.000  p99 3.000  p99.9 3.000  max 3.000\n",
		"    100µs - 200µs   |########################################| 3\n",
		"    200µs - 500µs   |                                        | 0\n",
		"    500µs - 1ms     |                                        | 0\n",
		"      1ms - 2ms     |                                        | 0\n",
		"      2ms - 5ms     |#############                           | 1\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

// TestMixedJSON: a mixed run's JSON gives reads and writes apart, and
// they add up to the totals.
func TestMixedJSON(t *testing.T) {
	node := newFakeNode(t, func(f *fakeNode) {
		f.getStatus = func(n int) int { return []int{200, 404}[n%2] }
	})
	cfg := testConfig(cmdMixed, 200, node.url)
	res := mustRun(t, cfg)
	var buf bytes.Buffer
	if err := writeJSON(&buf, res); err != nil {
		t.Fatal(err)
	}
	var rep jsonReport
	if err := json.Unmarshal(buf.Bytes(), &rep); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if rep.Reads == nil || rep.Writes == nil || rep.ReadRatio == nil || *rep.ReadRatio != 0.5 {
		t.Fatalf("mixed report lacks its parts: %s", buf.String())
	}
	if rep.Reads.Ops+rep.Writes.Ops != rep.Ops || rep.Reads.Requests+rep.Writes.Requests != 200 ||
		rep.Requests != 200 || rep.Errors.Total != rep.Reads.Errors.Total+rep.Writes.Errors.Total {
		t.Errorf("parts do not add up: %s", buf.String())
	}
	_, _, gets, served := node.counts()
	if rep.Reads.Ops != uint64(served) || rep.Reads.Errors.ByStatus[404] != uint64(gets-served) {
		t.Errorf("reads: %d ops, %v; server served %d of %d", rep.Reads.Ops, rep.Reads.Errors.ByStatus, served, gets)
	}
	if rep.Consistency != "linearizable" || rep.Keys != cfg.keys {
		t.Errorf("consistency %q, keys %d", rep.Consistency, rep.Keys)
	}
}

// TestTextReportOfRun checks, on a real run, that the numbers printed are
// the server's and that the histogram rows add up to the ops.
func TestTextReportOfRun(t *testing.T) {
	node := newFakeNode(t, nil)
	res := mustRun(t, testConfig(cmdPut, 64, node.url))
	var buf bytes.Buffer
	if err := writeText(&buf, res); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "Ops:         64 acknowledged of 64 requests\n") {
		t.Errorf("report:\n%s", buf.String())
	}
	var sum int
	for _, m := range regexp.MustCompile(`\| (\d+)\n`).FindAllStringSubmatch(buf.String(), -1) {
		n, _ := strconv.Atoi(m[1])
		sum += n
	}
	if sum != 64 {
		t.Errorf("histogram rows hold %d ops, want 64:\n%s", sum, buf.String())
	}
}

// jsonReport is the --json report as the tests read it back.
type jsonReport struct {
	Command       string   `json:"command"`
	Endpoints     []string `json:"endpoints"`
	Clients       int      `json:"clients"`
	ValueSize     int      `json:"value_size"`
	Consistency   string   `json:"consistency"`
	Keys          int      `json:"keys"`
	ReadRatio     *float64 `json:"read_ratio"`
	Contention    int      `json:"contention"`
	TxnOps        int      `json:"txn_ops"`
	Compare       *bool    `json:"compare"`
	RangeLimit    int      `json:"range_limit"`
	KeysOnly      *bool    `json:"keys_only"`
	KeysRead      *uint64  `json:"keys_read"`
	KeysPerSecond *float64 `json:"keys_per_second"`
	reportSection
	Reads        *reportSection `json:"reads"`
	Writes       *reportSection `json:"writes"`
	Written      *reportSection `json:"written"`
	Refused      *reportSection `json:"refused"`
	RefusedShare *float64       `json:"refused_share"`
	Watch        *struct {
		Opened             int               `json:"opened"`
		ExpectedDeliveries uint64            `json:"expected_deliveries"`
		Delivered          uint64            `json:"delivered"`
		Missed             uint64            `json:"missed"`
		EndedEarly         uint64            `json:"ended_early"`
		EndedBy            map[string]uint64 `json:"ended_by_reason"`
		Duplicates         uint64            `json:"duplicates"`
		DelayHistogram     []reportBucket    `json:"delay_histogram"`
	} `json:"watch"`
}

type reportSection struct {
	Requests uint64 `json:"requests"`
	Ops      uint64 `json:"ops"`
	Errors   struct {
		Total              uint64         `json:"total"`
		Unavailable503     uint64         `json:"unavailable_503"`
		OtherStatus        uint64         `json:"other_status"`
		PreconditionFailed *uint64        `json:"precondition_failed_412"`
		CompareFailed      *uint64        `json:"compare_failed"`
		ShortRange         *uint64        `json:"short_range"`
		ByStatus           map[int]uint64 `json:"by_status"`
	} `json:"errors"`
	LatencyUS struct {
		Min, Mean, P50, P90, P99, Max float64
		P999                          float64 `json:"p99_9"`
	} `json:"latency_us"`
	Histogram []reportBucket `json:"histogram"`
}

type reportBucket struct {
	Count uint64 `json:"count"`
}
