package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raftkv/node/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// TestReport checks which requests count as during the window (any
// overlap) and the figures of each side.
func TestReport(t *testing.T) {
	// The window is [1000 ms, 2000 ms].
	log := strings.Join([]string{
		"1\tput\t2000000\t-",                           // 1 ms long, long before: outside
		"900000000\tput\t150000000\t-",                 // 900..1050 ms: overlaps the start
		"1500000000\tget\t3000000\t-",                  // inside
		"1999000000\tget\t400000000\t-",                // 1999..2399 ms: overlaps the end
		"2001000000\tput\t5000000\t-",                  // after: outside
		"1600000000\tput\t9000000\tUnavailable",        // an error during
		"3000000000\tget\t1000000\tDeadlineExceeded\n", // an error outside
	}, "\n")
	path := filepath.Join(t.TempDir(), "probe.tsv")
	if err := os.WriteFile(path, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := run([]string{"report", "--log", path, "--from", "1000000000", "--to", "2000000000"}, &out); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Window  float64 `json:"window_ms"`
		During  figures `json:"during"`
		Outside figures `json:"outside"`
	}
	if err := json.Unmarshal([]byte(out.String()), &got); err != nil {
		t.Fatalf("%v: %q", err, out.String())
	}
	wantDuring := figures{N: 3, Errors: 1, P50: 150, P99: 400, Max: 400, MaxAt: 999}
	wantOutside := figures{N: 2, Errors: 1, P50: 2, P99: 5, Max: 5, MaxAt: 1001}
	if got.Window != 1000 || got.During != wantDuring || got.Outside != wantOutside {
		t.Errorf("report = %+v\nwant window 1000, during %+v, outside %+v", got, wantDuring, wantOutside)
	}
}

func TestUsage(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.tsv")
	if err := os.WriteFile(bad, []byte("1\tput\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args  []string
		usage bool // errUsage, else another error
	}{
		{nil, true},
		{[]string{"frobnicate"}, true},
		{[]string{"load", "--keys", "0"}, true},
		{[]string{"load", "--keys", "100000000"}, true},
		{[]string{"delete", "--keep-every", "0"}, true},
		{[]string{"probe"}, true}, // no --out
		{[]string{"report", "--log", bad}, true},
		{[]string{"report", "--log", bad, "--from", "2", "--to", "1"}, true},
		{[]string{"load", "extra"}, true},
		{[]string{"report", "--log", bad, "--from", "1", "--to", "2"}, false}, // 2 fields
		{[]string{"report", "--log", bad + ".missing", "--from", "1", "--to", "2"}, false},
	} {
		err := run(tc.args, &strings.Builder{})
		if err == nil || errors.Is(err, errUsage) != tc.usage {
			t.Errorf("run(%q) = %v, want an error, errUsage %v", tc.args, err, tc.usage)
		}
	}
}
