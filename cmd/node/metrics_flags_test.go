package main

import (
	"strings"
	"testing"
)

// --listen-metrics-urls takes http:// URLs on ports of their own, none by
// default; https://, a port the client or peer URLs take, or anything
// membership refuses in a listen URL, is a flag error naming the flag.
func TestMetricsURLsFlag(t *testing.T) {
	for _, c := range []struct {
		name    string
		args    []string
		want    []string // the URLs taken
		wantErr string   // a part of the error; "" for none
	}{
		{name: "none by default", args: nil},
		{name: "one", args: []string{"--listen-metrics-urls", "http://127.0.0.1:2381"}, want: []string{"http://127.0.0.1:2381"}},
		{name: "several, every interface", args: []string{"--listen-metrics-urls", "http://0.0.0.0:2381, http://127.0.0.1:2382"},
			want: []string{"http://0.0.0.0:2381", "http://127.0.0.1:2382"}},
		{name: "https refused", args: []string{"--listen-metrics-urls", "https://127.0.0.1:2381"},
			wantErr: "--listen-metrics-urls https://127.0.0.1:2381: only http:// is served there"},
		{name: "the client port", args: []string{"--port", "2379", "--listen-metrics-urls", "http://127.0.0.1:2379"},
			wantErr: "127.0.0.1:2379 is also where http://127.0.0.1:2379 listens"},
		{name: "the peer port", args: []string{"--cluster", "http://127.0.0.1:2380", "--listen-metrics-urls", "http://127.0.0.1:2380"},
			wantErr: "give the metrics a port of their own"},
		{name: "given twice", args: []string{"--listen-metrics-urls", "http://127.0.0.1:2381,http://127.0.0.1:2381"},
			wantErr: "--listen-metrics-urls: http://127.0.0.1:2381 is given twice"},
		{name: "not a URL", args: []string{"--listen-metrics-urls", "127.0.0.1:2381"}, wantErr: "--listen-metrics-urls"},
		{name: "with a path", args: []string{"--listen-metrics-urls", "http://127.0.0.1:2381/metrics"}, wantErr: "--listen-metrics-urls"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o, err := parseFlags(c.args, nil)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one with %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, u := range o.listenMetrics {
				got = append(got, u.String())
			}
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Errorf("metrics URLs %v, want %v", got, c.want)
			}
		})
	}
}

// As a process: https:// exits 2 with one line, before anything is made.
func TestMetricsURLsHTTPSExitsTwo(t *testing.T) {
	work := t.TempDir()
	code, stdout, stderr := runToExit(t, work, "--listen-metrics-urls", "https://127.0.0.1:2381")
	if code != 2 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "only http://") {
		t.Fatalf("exit %d, stdout %q, stderr %q: want 2 and one line saying only http://", code, stdout, stderr)
	}
}
