package transport

import (
	"sync"
	"time"
)

// activity tracks whether a peer has any stream connected, and since when.
// A member is "active" while one of the four streams between us is up: the
// two the peer dialed to us and the two we dialed to it, each carrying link
// heartbeats, so a peer that stops is noticed within connReadTimeout. This
// is what etcd's strict reconfiguration check calls ActiveSince. Stream
// writers and readers report from their own goroutines, hence the lock.
type activity struct {
	mu    sync.Mutex
	up    int
	since time.Time
}

// connected records a stream that came up.
func (a *activity) connected(now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.up == 0 {
		a.since = now
	}
	a.up++
}

// disconnected records a stream that went down.
func (a *activity) disconnected() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.up > 0 {
		a.up--
	}
	if a.up == 0 {
		a.since = time.Time{}
	}
}

// activeSince is when the peer became active; zero while it is not.
func (a *activity) activeSince() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.since
}
