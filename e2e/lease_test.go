package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// leaseHolderEnv, set to a member's client URL, makes the test binary the
// lock holder of TestLockGoesWithItsHolder instead of running tests (see
// TestMain): a process of its own, so that the test can kill it -9.
const leaseHolderEnv = "E2E_LEASE_HOLDER"

// holderTTL is the holder's lease: the minimum and then one second, so
// that a member that raises it would show.
const holderTTL = 3

// leaseHolder is the README's lock as a program: a lease, the lock key
// created on it, one line to say so, then a keep-alive every second until
// the lease is gone. It returns the process's exit code.
func leaseHolder(base string) int {
	post := func(path, body string) (map[string]any, int, error) {
		resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			return nil, 0, err
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
			return nil, resp.StatusCode, fmt.Errorf("POST %s: %d %v", path, resp.StatusCode, err)
		}
		return out, resp.StatusCode, nil
	}
	grant, _, err := post("/v1/leases", fmt.Sprintf(`{"ttl":%d}`, holderTTL))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	id, _ := grant["id"].(string)
	req, _ := http.NewRequest(http.MethodPut, base+"/v1/kv/locks/job?lease="+id, strings.NewReader("holder"))
	req.Header.Set("If-None-Match", "*")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "take the lock:", err)
		return 1
	}
	var took struct{ Revision uint64 }
	_ = json.NewDecoder(resp.Body).Decode(&took)
	resp.Body.Close()
	fmt.Printf("held %s %d\n", id, took.Revision)
	for {
		time.Sleep(time.Second) // the holder's renewal period, not a test's wait
		// Only 404 means the lease is gone; a 503 or a refused connection
		// (an election under way) is retried at the next period.
		if _, code, err := post("/v1/leases/"+id+"/keepalive", ""); code == http.StatusNotFound {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
}

// A lock held on a lease goes with its holder: while the holder keeps its
// lease alive, through a follower (which hands each keep-alive to the
// leader) and across the leader's death, the lock stays held; once the
// holder is killed -9 the lock is deleted within the lease's TTL plus an
// election timeout, a waiter's watch sees the delete, the lease is gone,
// and the next taker's revision, its fencing token, is higher.
func TestLockGoesWithItsHolder(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader(c.members...)
	via := c.others(lead)[0] // the holder talks to a follower
	lock := "/v1/kv/locks/job"

	holder := exec.Command(os.Args[0], "-test.run=^$")
	holder.Env = append(os.Environ(), leaseHolderEnv+"="+via.base)
	var stderr bytes.Buffer
	holder.Stderr = &stderr
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = holder.Process.Kill()
			_ = holder.Wait()
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	var id string
	var rev uint64
	if _, serr := fmt.Sscanf(line, "held %s %d", &id, &rev); err != nil || serr != nil {
		t.Fatalf("the holder did not take the lock: %q %v %v; stderr: %s", line, err, serr, stderr.String())
	}
	if r := call(http.MethodGet, lead.base+"/v1/leases/"+id+"?keys=true", ""); r.code != http.StatusOK ||
		!strings.Contains(r.body, fmt.Sprintf(`"granted_ttl":%d`, holderTTL)) || !strings.Contains(r.body, `"key":"locks/job"`) {
		t.Fatalf("the holder's lease: %s", r)
	}

	// Held for twice the TTL, and across the leader's death (the survivors
	// elect another, which extends the lease).
	stillHeld := func(d time.Duration) {
		t.Helper()
		for end := time.Now().Add(d); time.Now().Before(end); {
			r := call(http.MethodGet, via.base+"/v1/kv/?prefix=locks/job", "")
			if r.code != http.StatusOK || !strings.Contains(r.body, `"lease":"`+id+`"`) {
				t.Fatalf("the lock while its holder lives: %s; holder's stderr: %s", r, stderr.String())
			}
			time.Sleep(200 * time.Millisecond) // how often the lock is looked at
		}
	}
	stillHeld(2 * holderTTL * time.Second)
	if err := lead.p.Kill(); err != nil {
		t.Fatal(err)
	}
	c.leader(c.others(lead)...)
	stillHeld(2 * holderTTL * time.Second)

	// A waiter, on the other survivor, watches for the release.
	waiter := c.others(lead, via)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/v1/watch/locks/job?start_revision=%d", waiter.base, rev+1), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := httpClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("watch: %v %v", err, resp)
	}
	defer resp.Body.Close()
	deleted := make(chan time.Time, 1)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.Contains(sc.Text(), `"type":"delete"`) {
				deleted <- time.Now()
				return
			}
		}
	}()

	killedAt := time.Now()
	_ = holder.Process.Kill()
	_ = holder.Wait()
	killed = true
	const electionTimeout = time.Second // the default: --election-tick 10 × 100 ms
	select {
	case at := <-deleted:
		if took := at.Sub(killedAt); took > holderTTL*time.Second+electionTimeout {
			t.Fatalf("the lock was released %v after its holder died, more than the TTL (%d s) plus an election timeout", took, holderTTL)
		}
		t.Logf("released %v after the holder was killed (TTL %d s)", at.Sub(killedAt).Round(time.Millisecond), holderTTL)
	case <-ctx.Done():
		t.Fatal("the lock was never released after its holder died")
	}
	if r := call(http.MethodGet, waiter.base+"/v1/leases/"+id, ""); r.code != http.StatusNotFound {
		t.Fatalf("the dead holder's lease: %s, want 404", r)
	}
	r := callWith(http.MethodPut, waiter.base+lock, "next", map[string]string{"If-None-Match": "*"})
	var next struct{ Revision uint64 }
	if r.code != http.StatusOK || json.Unmarshal([]byte(r.body), &next) != nil || next.Revision <= rev {
		t.Fatalf("the next taker: %s; its revision must be past %d", r, rev)
	}
}
