package main

import (
	"net/http"
	"testing"
)

func TestKeyNames(t *testing.T) {
	tests := []struct {
		name   string
		prefix string
		run    string
		size   int
		put    [2]int // client, seq
		want   string
		space  uint64
		wantSp string
	}{
		{"padded to size", "bench-", "r1", 16, [2]int{3, 7}, "bench-r1-3-00007", 42, "bench-r1-k000042"},
		{"no padding", "bench-", "r1", 0, [2]int{3, 7}, "bench-r1-3-7", 42, "bench-r1-k42"},
		{"longer than size", "p", "r", 4, [2]int{12, 3456}, "pr-12-3456", 123456, "pr-k123456"},
		{"empty prefix", "", "x", 8, [2]int{0, 0}, "x-0-0000", 0, "x-k00000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newKeyNamer(tt.prefix, tt.run, tt.size)
			if got := string(n.appendPutKey(nil, tt.put[0], uint64(tt.put[1]))); got != tt.want {
				t.Errorf("put key %q, want %q", got, tt.want)
			}
			if got := string(n.appendSpaceKey(nil, tt.space)); got != tt.wantSp {
				t.Errorf("space key %q, want %q", got, tt.wantSp)
			}
		})
	}
}

// TestKeysUnique: every (run, client, seq) of put and every index of the
// key space names its own key, whatever the padding, including clients and
// sequence numbers whose digits could run together ("1","12" and "11","2").
func TestKeysUnique(t *testing.T) {
	for _, size := range []int{0, 12, 16, 40} {
		seen := make(map[string]string)
		add := func(key []byte, what string) {
			if prev, dup := seen[string(key)]; dup {
				t.Fatalf("size %d: key %q of %s is also the key of %s", size, key, what, prev)
			}
			if len(key) < size {
				t.Fatalf("size %d: key %q is short", size, key)
			}
			seen[string(key)] = what
		}
		for _, run := range []string{"a", "b"} {
			n := newKeyNamer("bench-", run, size)
			for c := range 120 {
				for s := range 150 {
					add(n.appendPutKey(nil, c, uint64(s)), "put")
				}
			}
			for i := range 5000 {
				add(n.appendSpaceKey(nil, uint64(i)), "space")
			}
		}
	}
}

// TestKeyAppendAllocs: keys are built in the hot loop into a reused buffer
// and must not allocate.
func TestKeyAppendAllocs(t *testing.T) {
	n := newKeyNamer("bench-", "r1", 16)
	buf := make([]byte, 0, 64)
	var seq uint64
	allocs := testing.AllocsPerRun(1000, func() {
		buf = n.appendPutKey(buf[:0], 17, seq)
		buf = n.appendSpaceKey(buf[:0], seq)
		seq++
	})
	if allocs != 0 {
		t.Errorf("building a key allocates %v times", allocs)
	}
}

// TestRequestAllocs bounds what building a request costs beyond net/http:
// the path string, the one call object and, for a PUT, the body's closer.
func TestRequestAllocs(t *testing.T) {
	cfg := testConfig(cmdMixed, 1, "http://127.0.0.1:1")
	ws, err := newWorkers(cfg, cfg.endpoints, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := ws[0]
	for name, build := range map[string]func(){
		"put": func() { _ = w.newCall(http.MethodPut, w.spacePath(3), "", w.value, nil) },
		"get": func() { _ = w.newCall(http.MethodGet, w.spacePath(3), w.query, nil, nil) },
	} {
		if n := testing.AllocsPerRun(1000, build); n > 3 {
			t.Errorf("%s request: %v allocations, want at most 3", name, n)
		}
	}
}
