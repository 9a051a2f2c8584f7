package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/node/internal/testutil"
)

// rangeAnswer is the JSON of a range read, decoded here rather than with the
// node's packages so that the test pins the wire format.
type rangeAnswer struct {
	Revision uint64 `json:"revision"`
	KVs      []struct {
		Key            string `json:"key"`
		Value          string `json:"value"`
		CreateRevision uint64 `json:"create_revision"`
		ModRevision    uint64 `json:"mod_revision"`
		Version        uint64 `json:"version"`
	} `json:"kvs"`
	More     bool   `json:"more"`
	Continue string `json:"continue"`
	Count    int    `json:"count"`
}

func mustRange(t *testing.T, base, query string) rangeAnswer {
	t.Helper()
	var ra rangeAnswer
	testutil.Eventually(t, 20*time.Second, "GET "+base+"/v1/kv/?"+query, func() error {
		r := call(http.MethodGet, base+"/v1/kv/?"+query, "")
		if r.retryable() {
			return errors.New(r.String())
		}
		if r.code != http.StatusOK {
			t.Fatalf("GET %s/v1/kv/?%s: %s", base, query, r)
		}
		if err := json.Unmarshal([]byte(r.body), &ra); err != nil {
			t.Fatalf("range answer %q: %v", r.body, err)
		}
		return nil
	})
	return ra
}

// Clients of every member race to create one key and then to increment a
// counter by compare-and-swap: exactly one create wins, and no increment is
// lost, whichever member each went through. Every member then serves the
// same key at the same revision.
func TestCompareAndSwapAcrossMembers(t *testing.T) {
	c := newCluster(t, 3)
	var mu sync.Mutex
	var wins, refusals int
	var wg sync.WaitGroup
	for i := range 6 {
		base := c.members[i%3].base
		wg.Go(func() {
			r := callWith(http.MethodPut, base+"/v1/kv/lock", fmt.Sprint("holder-", i), map[string]string{"If-None-Match": "*"})
			mu.Lock()
			defer mu.Unlock()
			switch r.code {
			case http.StatusOK:
				wins++
			case http.StatusPreconditionFailed:
				refusals++
			default:
				t.Errorf("create through %s: %s", base, r)
			}
		})
	}
	wg.Wait()
	if wins != 1 || refusals != 5 {
		t.Fatalf("%d creates won and %d were refused, want 1 and 5", wins, refusals)
	}

	mustWrite(t, c.members[0].base, "/v1/kv/counter", "0", http.StatusOK)
	const perClient = 15
	for _, m := range c.members {
		wg.Go(func() {
			for done := 0; done < perClient; {
				r := call(http.MethodGet, m.base+"/v1/kv/counter", "")
				if r.code != http.StatusOK {
					t.Errorf("GET counter through %s: %s", m.name(), r)
					return
				}
				n, _ := strconv.Atoi(r.body)
				w := callWith(http.MethodPut, m.base+"/v1/kv/counter", strconv.Itoa(n+1), map[string]string{"If-Match": r.header.Get("ETag")})
				switch w.code {
				case http.StatusOK:
					done++
				case http.StatusPreconditionFailed: // another client got there first: read again
				default:
					// A 504 would leave the increment's outcome unknown, and
					// this healthy cluster has no reason to give one.
					t.Errorf("CAS through %s: %s", m.name(), w)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	want := strconv.Itoa(3 * perClient)
	var etag, version string
	for _, m := range c.members {
		mustRead(t, m.base, "/v1/kv/counter", want)
		r := call(http.MethodGet, m.base+"/v1/kv/counter", "")
		if etag == "" {
			etag, version = r.header.Get("ETag"), r.header.Get("Raftkv-Version")
		}
		if r.header.Get("ETag") != etag || r.header.Get("Raftkv-Version") != version {
			t.Errorf("%s serves the counter at ETag %s version %s, another member at %s %s",
				m.name(), r.header.Get("ETag"), r.header.Get("Raftkv-Version"), etag, version)
		}
	}
	if version != strconv.Itoa(3*perClient+1) {
		t.Errorf("counter at version %s after %d increments of its creation, want %d", version, 3*perClient, 3*perClient+1)
	}

	// A value compare-and-swap through /v1/txn, on another member.
	txn := `{"compare":[{"key":"counter","target":"value","op":"=","value":"` + want + `"}],
		"success":[{"op":"put","key":"counter","value":"done"}],"failure":[{"op":"get","key":"counter"}]}`
	r := call(http.MethodPost, c.members[2].base+"/v1/txn", txn)
	if r.code != http.StatusOK || !json.Valid([]byte(r.body)) {
		t.Fatalf("txn: %s", r)
	}
	var ans struct {
		Succeeded bool `json:"succeeded"`
	}
	if err := json.Unmarshal([]byte(r.body), &ans); err != nil || !ans.Succeeded {
		t.Fatalf("txn did not succeed: %s", r)
	}
	mustRead(t, c.members[0].base, "/v1/kv/counter", "done")
}

// A range read in pages while writers change the range reads one snapshot:
// the pages, each pinned by its continuation to the first page's revision,
// are what one read at that revision returns from another member.
func TestRangePagesReadOneRevision(t *testing.T) {
	c := newCluster(t, 3)
	for i := range 120 {
		mustWrite(t, c.members[i%3].base, fmt.Sprintf("/v1/kv/r/%03d", i), "v0", http.StatusOK)
	}
	stopWriters := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(1, 2))
		for n := 0; ; n++ {
			select {
			case <-stopWriters:
				return
			default:
			}
			key := fmt.Sprintf("/v1/kv/r/%03d", rng.IntN(150))
			if rng.IntN(3) == 0 {
				call(http.MethodDelete, c.members[0].base+key, "")
			} else {
				call(http.MethodPut, c.members[0].base+key, fmt.Sprint("v", n))
			}
		}
	})
	pages := make(map[string]string)
	first := mustRange(t, c.members[1].base, "prefix=r/&limit=25")
	rev := first.Revision
	for page := first; ; {
		if page.Revision != rev {
			t.Fatalf("a page at revision %d, the first was at %d", page.Revision, rev)
		}
		for _, kv := range page.KVs {
			if kv.ModRevision > rev {
				t.Errorf("key %s at mod_revision %d in a read at %d", kv.Key, kv.ModRevision, rev)
			}
			pages[kv.Key] = kv.Value
		}
		if !page.More {
			break
		}
		page = mustRange(t, c.members[1].base, "prefix=r/&limit=25&continue="+url.QueryEscape(page.Continue))
	}
	close(stopWriters)
	wg.Wait()

	whole := mustRange(t, c.members[2].base, fmt.Sprintf("prefix=r/&limit=10000&revision=%d", rev))
	once := make(map[string]string)
	for _, kv := range whole.KVs {
		once[kv.Key] = kv.Value
	}
	if !maps.Equal(pages, once) {
		t.Fatalf("the pages at revision %d hold %d keys, one read at it %d:\npages %v\nonce  %v", rev, len(pages), len(once), pages, once)
	}
	if now := mustRange(t, c.members[2].base, "prefix=r/&limit=10000"); now.Revision <= rev {
		t.Fatalf("the writers moved nothing: revision %d, the pages' %d", now.Revision, rev)
	}
}
