package apply

import (
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// A lessor's revocation or checkpoint applies only from an entry of the
// term it names: one decided by a leader deposed without knowing it, and
// proposed again under the next, is skipped alike on every member; a
// client's revocation (term 0) applies in any term.
func TestLeaseCommandsAreFencedByTerm(t *testing.T) {
	at := func(idx, term uint64, data []byte) *raftpb.Entry {
		e := entryAt(idx, data)
		e.Term = new(term)
		return e
	}
	cases := []struct {
		name      string
		cmd       func() (Command, error)
		term      uint64 // of the entry
		revoked   bool
		remaining int64 // the checkpoint the state holds after
	}{
		{"expiry in its term", func() (Command, error) { return ProposeLeaseExpiry(7, 4) }, 4, true, 0},
		{"expiry appended in a later term", func() (Command, error) { return ProposeLeaseExpiry(7, 4) }, 5, false, 0},
		{"expiry of an older term than its entry's", func() (Command, error) { return ProposeLeaseExpiry(7, 3) }, 4, false, 0},
		{"a client's revocation, any term", func() (Command, error) { return ProposeLeaseRevoke(7) }, 9, true, 0},
		{"checkpoint in its term", func() (Command, error) { return ProposeLeaseCheckpoint(7, 30, 4) }, 4, false, 30},
		{"checkpoint appended in a later term", func() (Command, error) { return ProposeLeaseCheckpoint(7, 30, 4) }, 5, false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := tmpStore(t)
			ap := newApplier(t, st, FormatNative, 0)
			if _, err := ap.Apply(at(1, 4, grantData(t, 1, 7, 60)), func(uint64) bool { return false }); err != nil {
				t.Fatal(err)
			}
			cmd, err := c.cmd()
			res, aerr := ap.Apply(at(2, c.term, leaseData(t, 2, cmd, err)), func(uint64) bool { return false })
			if aerr != nil {
				t.Fatal(aerr)
			}
			rec, held, err := st.Lease(7)
			if err != nil {
				t.Fatal(err)
			}
			if held == c.revoked || (len(res.Leases) == 1) != c.revoked {
				t.Fatalf("lease held %v, changes %+v; want revoked %v", held, res.Leases, c.revoked)
			}
			if held && rec.Remaining != c.remaining {
				t.Fatalf("remaining checkpointed %d, want %d", rec.Remaining, c.remaining)
			}
			if applied, term := st.Applied(); applied != 2 || term != c.term {
				t.Fatalf("applied %d at term %d: a skipped command still moves the applied index", applied, term)
			}
		})
	}
}
