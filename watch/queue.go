package watch

import "sync"

// queue is what the hub has for one watcher and its stream has not taken
// yet. The hub pushes without waiting (a full queue refuses the push, and
// the hub ends the watcher); the stream takes everything at once, so that
// it writes a busy stream's events in few large writes.
type queue struct {
	mu     sync.Mutex
	items  []Item
	events int // KindEvents items in items
	bytes  int // their Events.Size
	// Bounds, set by the hub before its first push.
	maxEvents, maxBytes int
	ended               bool // a KindEnd item was pushed: nothing follows it
	// pushed is the revision of the last events pushed: a hub rebuilt
	// after a panic in the middle of handing a revision out resumes each
	// watcher after what it was given (hub_rebuild.go).
	pushed uint64
	closed bool // the stream closed: onEnd may no longer run
	// onEnd, if set, runs once when the hub ends the watcher, on the hub's
	// goroutine and under mu, so never after close returned.
	onEnd func()
	// ready holds a token while items may be waiting for the stream.
	ready chan struct{}
}

func newQueue(onEnd func()) *queue {
	return &queue{onEnd: onEnd, ready: make(chan struct{}, 1)}
}

func (q *queue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// push adds one revision's events, of size bytes (Events.Size), or reports
// false, adding nothing, when they would take the queue past a bound.
func (q *queue) push(rev uint64, size int, evs *Events) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.ended {
		return true // dropped: the stream already has its end
	}
	if q.events+1 > q.maxEvents || q.bytes+size > q.maxBytes {
		return false
	}
	q.items = append(q.items, Item{Kind: KindEvents, Revision: rev, Events: evs})
	q.pushed = rev
	q.events++
	q.bytes += size
	q.signal()
	return true
}

// pushProgress adds a progress mark. A mark still waiting behind nothing
// newer is moved up instead, so that a stalled client's queue does not
// fill with marks.
func (q *queue) pushProgress(rev uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.ended {
		return
	}
	if n := len(q.items); n > 0 && q.items[n-1].Kind == KindProgress {
		q.items[n-1].Revision = rev
		return
	}
	q.items = append(q.items, Item{Kind: KindProgress, Revision: rev})
	q.signal()
}

// end adds the end item: resume is the first revision the hub did not give
// the watcher (0 when it was still catching up, which only its stream
// knows). Later pushes are dropped.
func (q *queue) end(reason string, resume uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.ended {
		return
	}
	q.ended = true
	q.items = append(q.items, Item{Kind: KindEnd, Revision: resume, Reason: reason})
	q.signal()
	if q.onEnd != nil && !q.closed {
		q.onEnd()
	}
}

// lastPushed is the revision of the last events pushed, 0 if none.
func (q *queue) lastPushed() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pushed
}

// take moves every waiting item to dst.
func (q *queue) take(dst []Item) []Item {
	q.mu.Lock()
	defer q.mu.Unlock()
	dst = append(dst, q.items...)
	clear(q.items) // the queue's array must not keep the items' data alive
	q.items = q.items[:0]
	q.events, q.bytes = 0, 0
	return dst
}

// isEnded reports whether the hub ended the watcher.
func (q *queue) isEnded() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.ended
}

// close tells the queue its stream is done: onEnd no longer runs.
func (q *queue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
}
