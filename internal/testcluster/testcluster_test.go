package testcluster

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// protoactor's dead-letter log throttle ends by itself a second
		// after the dead letter that started it.
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"))
}

// TestClusterConverges starts a cluster over each network, writes through
// a follower and reads the write's effect in every member's digest.
func TestClusterConverges(t *testing.T) {
	for _, tc := range []struct {
		name     string
		overHTTP bool
	}{
		{"memory", false},
		{"http", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Start(Config{OverHTTP: tc.overHTTP})
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := c.Stop(); err != nil {
					t.Error(err)
				}
			}()
			lead, err := c.WaitLeader(20 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			via := c.Members[0]
			if via == lead {
				via = c.Members[1]
			}
			req, err := http.NewRequest(http.MethodPut, via.URL+"/v1/kv/a%2F%2Fb", strings.NewReader("v"))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("PUT through member %d: %d", via.ID, resp.StatusCode)
			}
			d, err := c.Converged(20 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if d.Keys != 1 {
				t.Fatalf("digest %+v, want one key", d)
			}
			if err := c.Stopped(); err != nil {
				t.Fatal(err)
			}
			// The member list holds every member's published client URL.
			ms, err := c.MemberList(lead)
			if err != nil || len(ms) != len(c.Members) {
				t.Fatalf("members %+v, %v", ms, err)
			}
		})
	}
}
