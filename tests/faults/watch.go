package faults

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/raftkv/node/internal/sse"
)

// WatchEvent is one event of a watch stream (docs/api.md, "Watch").
type WatchEvent struct {
	Type           string // "put" or "delete"
	Key            string
	Value          string // a put's
	CreateRevision uint64 // a put's
	ModRevision    uint64
	Version        uint64 // a put's
	Lease          int64  // a put's: the lease the key is attached to, 0 for none
}

func (e WatchEvent) String() string {
	if e.Type == "delete" {
		return fmt.Sprintf("delete %q", e.Key)
	}
	s := fmt.Sprintf("%s %q=%q (create %d, mod %d, version %d", e.Type, e.Key, e.Value, e.CreateRevision, e.ModRevision, e.Version)
	if e.Lease != 0 {
		s += fmt.Sprintf(", lease %d", e.Lease)
	}
	return s + ")"
}

// WatchMsg is one SSE message of events: what the watch takes of one
// revision.
type WatchMsg struct {
	Revision uint64
	Events   []WatchEvent
	// Conn is the watcher's connection that delivered it (1 the first),
	// for reports; it takes no part in comparisons.
	Conn int
	// Covered is the revision through which the watcher had received
	// everything when the message came: what the earlier messages,
	// progress and end events said. A message at or below it breaks
	// their word. It takes no part in comparisons; 0 is unknown.
	Covered uint64
	// At is when the watcher received it (the zero time: unknown), for
	// the lease checks: the events it carries were applied by then. It
	// takes no part in comparisons.
	At time.Time
}

func (m WatchMsg) String() string {
	evs := make([]string, len(m.Events))
	for i, e := range m.Events {
		evs[i] = e.String()
	}
	return fmt.Sprintf("@%d (connection %d) [%s]", m.Revision, m.Conn, strings.Join(evs, "; "))
}

// sameEvents says whether two messages carry the same revision and events.
func (m WatchMsg) sameEvents(o WatchMsg) bool {
	if m.Revision != o.Revision || len(m.Events) != len(o.Events) {
		return false
	}
	for i := range m.Events {
		if m.Events[i] != o.Events[i] {
			return false
		}
	}
	return true
}

// watchData is the data of a message of events.
type watchData struct {
	Revision *uint64 `json:"revision"`
	Events   []struct {
		Type           string  `json:"type"`
		Key            *string `json:"key"`
		KeyB64         *string `json:"key_b64"`
		Value          *string `json:"value"`
		ValueB64       *string `json:"value_b64"`
		CreateRevision uint64  `json:"create_revision"`
		ModRevision    uint64  `json:"mod_revision"`
		Version        uint64  `json:"version"`
		Lease          *string `json:"lease"`
	} `json:"events"`
}

// parseWatchMsg reads the data of a message of events. It checks the form
// only (a revision, known types, a key, a put's value); whether the events
// are right is for CheckWatches.
func parseWatchMsg(data string) (WatchMsg, error) {
	var d watchData
	if err := json.Unmarshal([]byte(data), &d); err != nil {
		return WatchMsg{}, err
	}
	if d.Revision == nil || *d.Revision == 0 {
		return WatchMsg{}, errors.New("no revision")
	}
	if d.Events == nil {
		return WatchMsg{}, errors.New("no events")
	}
	m := WatchMsg{Revision: *d.Revision, Events: make([]WatchEvent, 0, len(d.Events))}
	for i, e := range d.Events {
		key, err := textOrB64(e.Key, e.KeyB64)
		if err != nil {
			return WatchMsg{}, fmt.Errorf("event %d: key: %w", i, err)
		}
		ev := WatchEvent{Type: e.Type, Key: key, ModRevision: e.ModRevision}
		switch e.Type {
		case "put":
			if ev.Value, err = textOrB64(e.Value, e.ValueB64); err != nil {
				return WatchMsg{}, fmt.Errorf("event %d: value: %w", i, err)
			}
			ev.CreateRevision, ev.Version = e.CreateRevision, e.Version
			if e.Lease != nil {
				// A JSON string of the id's digits; no lease, no field.
				id, err := strconv.ParseInt(*e.Lease, 10, 64)
				if err != nil || id <= 0 {
					return WatchMsg{}, fmt.Errorf("event %d: lease %q", i, *e.Lease)
				}
				ev.Lease = id
			}
		case "delete":
			if e.Value != nil || e.ValueB64 != nil || e.Lease != nil {
				return WatchMsg{}, fmt.Errorf("event %d: a delete with a value or a lease", i)
			}
		default:
			return WatchMsg{}, fmt.Errorf("event %d: type %q", i, e.Type)
		}
		m.Events = append(m.Events, ev)
	}
	return m, nil
}

// textOrB64 is a field sent as text, or as base64 under its _b64 name.
func textOrB64(text, b64 *string) (string, error) {
	switch {
	case text != nil && b64 != nil:
		return "", errors.New("both as text and as base64")
	case text != nil:
		return *text, nil
	case b64 != nil:
		b, err := base64.StdEncoding.DecodeString(*b64)
		return string(b), err
	}
	return "", errors.New("missing")
}

// parseWatchMark reads the data of a progress event, {"revision":R}, or
// of an end, {"resume_revision":R,"reason":"..."}.
func parseWatchMark(typ, data string) (rev uint64, reason string, err error) {
	var d struct {
		Revision       *uint64 `json:"revision"`
		ResumeRevision *uint64 `json:"resume_revision"`
		Reason         *string `json:"reason"`
	}
	if err := json.Unmarshal([]byte(data), &d); err != nil {
		return 0, "", err
	}
	if typ == "progress" {
		if d.Revision == nil {
			return 0, "", errors.New("no revision")
		}
		return *d.Revision, "", nil
	}
	if d.ResumeRevision == nil || *d.ResumeRevision == 0 || d.Reason == nil || *d.Reason == "" {
		return 0, "", errors.New("no resume_revision or no reason")
	}
	return *d.ResumeRevision, *d.Reason, nil
}

// ErrWatchCompacted is a watcher's error when a member answers its resume
// with 410 Gone: the member's history no longer reaches the revision, so
// the events between are lost to the watcher.
var ErrWatchCompacted = errors.New("watch resume refused: history compacted (410)")

// errStreamIdle cuts a stream that has been silent too long.
var errStreamIdle = errors.New("watch stream silent too long")

// errStreamCut is the watcher's own cut of a stream (Watcher.Lifetime).
var errStreamCut = errors.New("watch stream cut by the watcher")

// Defaults of Watcher.
const (
	// DefaultWatchIdle is how long a stream may be silent before the
	// watcher cuts it and reconnects: three of the node's progress
	// intervals (10 s), each of which must bring a progress event.
	DefaultWatchIdle = 30 * time.Second
	// DefaultWatchBackoff and DefaultWatchMaxBackoff pace the attempts
	// to reconnect: doubling from the first to the second while the
	// member does not answer.
	DefaultWatchBackoff    = 20 * time.Millisecond
	DefaultWatchMaxBackoff = time.Second
)

// WatchStats counts what a watcher went through (since the last Drain).
type WatchStats struct {
	Messages    int // messages of events (revisions) received
	Events      int // events in them
	Progress    int // progress events
	Connections int // streams opened (200 answers)
	Failed      int // attempts that opened no stream: refused, 503, no answer, ...
	Breaks      int // streams that broke without an end event
	Idle        int // streams or attempts cut for silence (see DefaultWatchIdle)
	Cuts        int // streams the watcher cut itself (Watcher.Lifetime)
	// Ends counts the end events by reason.
	Ends map[string]int
}

func (s WatchStats) String() string {
	ends := "none"
	if len(s.Ends) > 0 {
		var parts []string
		for _, r := range slices.Sorted(maps.Keys(s.Ends)) {
			parts = append(parts, fmt.Sprintf("%s %d", r, s.Ends[r]))
		}
		ends = strings.Join(parts, ", ")
	}
	return fmt.Sprintf("%d events in %d revisions, %d progress; %d streams opened: %d cut by the watcher, %d broken, %d silent, ends: %s; %d failed attempts",
		s.Events, s.Messages, s.Progress, s.Connections, s.Cuts, s.Breaks, s.Idle, ends, s.Failed)
}

// Watcher follows one member's watch of a prefix for as long as Run runs,
// through the member's deaths, pauses and restarts: when a stream ends or
// breaks it reconnects to the same member, pausing with backoff between
// attempts while the member does not answer, and resumes after the last
// revision it fully received (Last-Event-ID; a progress or an end event
// advances it). It records every message of events as received, in order;
// judging them is CheckWatches's. A 410, an answer that breaks the API's
// contract, or a refused request (4xx) stops it: Err says why.
type Watcher struct {
	Member uint64
	URL    string // the member's client URL
	Prefix string
	// Start is the first revision to watch, from 1: the start_revision of
	// every request, to which Last-Event-ID adds where to resume.
	Start   uint64
	Idle    time.Duration // default DefaultWatchIdle
	Backoff time.Duration // default DefaultWatchBackoff
	// MaxBackoff bounds the pause between attempts; default
	// DefaultWatchMaxBackoff.
	MaxBackoff time.Duration
	// Lifetime, if set, draws how long each stream may last before the
	// watcher cuts it itself and resumes, as a client that goes away
	// and comes back; nil lets a stream last until it ends or breaks.
	// It is called from Run's goroutine only.
	Lifetime func() time.Duration

	mu      sync.Mutex
	msgs    []WatchMsg
	through uint64 // every event up to it was received
	conns   int    // streams opened, ever: numbers the connections
	stats   WatchStats
	err     error  // the fatal one, after which Run returned
	lastErr string // the last attempt's or break's, for reports
	changed chan struct{}
}

func (w *Watcher) init() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.changed == nil {
		w.changed = make(chan struct{})
		w.through = w.Start - 1
	}
}

// notifyLocked wakes the waiters of WaitThrough.
func (w *Watcher) notifyLocked() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// Run follows the watch until ctx ends or a fatal error, which it returns
// (nil when ctx ended).
func (w *Watcher) Run(ctx context.Context) error {
	// A connection per stream: one to a member that was killed is not
	// reused, and none outlives Run.
	transport := &http.Transport{DisableKeepAlives: true}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport} // no timeout: a stream lasts
	return w.loop(ctx, func(ctx context.Context, idle time.Duration) (bool, error) {
		return w.follow(ctx, client, idle)
	})
}

// loop makes attempts with follow until ctx ends or one fails fatally:
// follow opens a stream and reads it until it ends or breaks (opened says
// it opened one; err is fatal), cutting it after idle of silence.
func (w *Watcher) loop(ctx context.Context, follow func(ctx context.Context, idle time.Duration) (opened bool, err error)) error {
	if w.Start == 0 {
		return errors.New("watcher: Start must be a revision, 1 or more")
	}
	w.init()
	idle, backoff, maxBackoff := w.Idle, w.Backoff, w.MaxBackoff
	if idle <= 0 {
		idle = DefaultWatchIdle
	}
	if backoff <= 0 {
		backoff = DefaultWatchBackoff
	}
	if maxBackoff <= 0 {
		maxBackoff = DefaultWatchMaxBackoff
	}
	pause := backoff
	for {
		opened, err := follow(ctx, idle)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			w.mu.Lock()
			w.err = err
			w.notifyLocked()
			w.mu.Unlock()
			return err
		}
		if opened {
			pause = backoff
		}
		// The pause between attempts, so that a member that is down is
		// not dialed in a tight loop: not synchronization.
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		pause = min(2*pause, maxBackoff)
	}
}

// follow makes one attempt: it opens a stream and reads it until it ends
// or breaks. opened says a stream was opened; err is fatal.
func (w *Watcher) follow(ctx context.Context, client *http.Client, idle time.Duration) (opened bool, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// A stream must bring a progress event every 10 s, and a request to a
	// paused member hangs until it resumes: silence past idle cuts either.
	timer := time.AfterFunc(idle, func() { cancel(errStreamIdle) })
	defer timer.Stop()
	if w.Lifetime != nil {
		// The watcher's own cut: a client that goes away and comes back.
		life := time.AfterFunc(w.Lifetime(), func() { cancel(errStreamCut) })
		defer life.Stop()
	}

	w.mu.Lock()
	resume := w.through
	w.mu.Unlock()
	target := fmt.Sprintf("%s/v1/watch/%s?prefix=true&start_revision=%d",
		strings.TrimSuffix(w.URL, "/"), url.PathEscape(w.Prefix), w.Start)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return false, err
	}
	if resume >= w.Start {
		req.Header.Set("Last-Event-ID", strconv.FormatUint(resume, 10))
	}
	resp, err := client.Do(req)
	if err != nil {
		w.ended(ctx, false, err)
		return false, nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		err := fmt.Errorf("GET %s (Last-Event-ID %q): %d %s", target, req.Header.Get("Last-Event-ID"), resp.StatusCode, oneLine(body))
		switch {
		case resp.StatusCode == http.StatusGone:
			return false, fmt.Errorf("member %d: %w: %w", w.Member, ErrWatchCompacted, err)
		case resp.StatusCode >= 400 && resp.StatusCode < 500:
			return false, fmt.Errorf("member %d refused the watch: %w", w.Member, err)
		}
		w.ended(ctx, false, err)
		return false, nil
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return true, fmt.Errorf("member %d: %w: a watch answered Content-Type %q", w.Member, ErrMalformedAnswer, ct)
	}
	w.mu.Lock()
	w.conns++
	conn := w.conns
	w.stats.Connections++
	w.mu.Unlock()

	sr := sse.NewReader(bufio.NewReader(resp.Body))
	for {
		ev, err := sr.Next()
		if err != nil {
			w.ended(ctx, true, err)
			return true, nil
		}
		timer.Reset(idle)
		end, err := w.take(sseEvent{Type: string(ev.Type), ID: string(ev.ID), Data: string(ev.Data)}, conn)
		if err != nil {
			return true, fmt.Errorf("member %d: %w: %w", w.Member, ErrMalformedAnswer, err)
		}
		if end {
			return true, nil
		}
	}
}

// sseEvent is one event of a watch stream, its fields copied out of the
// reader's buffers.
type sseEvent struct {
	Type string // "" for the default type, "message"
	ID   string
	Data string
}

// take records one SSE event; end says it ended the stream.
func (w *Watcher) take(ev sseEvent, conn int) (end bool, err error) {
	id, idErr := strconv.ParseUint(ev.ID, 10, 64)
	w.mu.Lock()
	defer w.mu.Unlock()
	defer w.notifyLocked()
	switch ev.Type {
	case "":
		m, err := parseWatchMsg(ev.Data)
		if err != nil {
			return false, fmt.Errorf("event %q: %w", ev.Data, err)
		}
		if idErr != nil || id != m.Revision {
			return false, fmt.Errorf("event of revision %d with id %q", m.Revision, ev.ID)
		}
		m.Conn, m.Covered, m.At = conn, w.through, time.Now()
		w.msgs = append(w.msgs, m)
		w.through = max(w.through, m.Revision)
		w.stats.Messages++
		w.stats.Events += len(m.Events)
	case "progress":
		rev, _, err := parseWatchMark(ev.Type, ev.Data)
		if err != nil {
			return false, fmt.Errorf("progress %q: %w", ev.Data, err)
		}
		if idErr != nil || id != rev {
			return false, fmt.Errorf("progress of revision %d with id %q", rev, ev.ID)
		}
		// A mark below what was received says nothing new, and nothing
		// wrong: it is true too.
		w.through = max(w.through, rev)
		w.stats.Progress++
	case "end":
		resume, reason, err := parseWatchMark(ev.Type, ev.Data)
		if err != nil {
			return false, fmt.Errorf("end %q: %w", ev.Data, err)
		}
		if idErr != nil || id != resume-1 {
			return false, fmt.Errorf("end resuming at %d with id %q", resume, ev.ID)
		}
		w.through = max(w.through, resume-1)
		if w.stats.Ends == nil {
			w.stats.Ends = make(map[string]int)
		}
		w.stats.Ends[reason]++
		return true, nil
	default:
		return false, fmt.Errorf("an event of type %q", ev.Type)
	}
	return false, nil
}

// ended counts an attempt that opened no stream, or a stream that ended
// without an end event, by why: a cut of the watcher's own, silence, or
// the member (refused, 503, a broken connection).
func (w *Watcher) ended(ctx context.Context, opened bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, errStreamCut) && opened:
		w.stats.Cuts++
		return
	case errors.Is(cause, errStreamCut):
		// A member that does not answer (paused) outlived the attempt.
		w.stats.Failed++
		err = fmt.Errorf("no answer before the watcher's cut: %w", err)
	case errors.Is(cause, errStreamIdle):
		w.stats.Idle++
		err = cause
	case ctx.Err() != nil:
		return // Run is stopping
	case opened:
		w.stats.Breaks++
	default:
		w.stats.Failed++
	}
	if opened {
		err = fmt.Errorf("connection %d: %w", w.conns, err)
	}
	w.lastErr = err.Error()
}

// Err is the error that stopped the watcher, nil while it runs or after
// Run returned for its context.
func (w *Watcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Through is the revision through which the watcher received every event.
func (w *Watcher) Through() uint64 {
	w.init()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.through
}

// WaitThrough waits until the watcher has received every event through
// rev, it stopped, or ctx ends.
func (w *Watcher) WaitThrough(ctx context.Context, rev uint64) error {
	w.init()
	for {
		w.mu.Lock()
		through, err, changed := w.through, w.err, w.changed
		state := fmt.Sprintf("%d streams opened, last error: %s", w.conns, w.lastErr)
		w.mu.Unlock()
		switch {
		case err != nil:
			return err
		case through >= rev:
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("member %d's watcher received through revision %d, not %d (%s): %w",
				w.Member, through, rev, state, ctx.Err())
		}
	}
}

// Drain returns, and forgets, the messages received so far of revisions up
// to upTo, and the stats since the last Drain. Messages of later revisions
// stay for the next.
func (w *Watcher) Drain(upTo uint64) ([]WatchMsg, WatchStats) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var taken, kept []WatchMsg
	for _, m := range w.msgs {
		if m.Revision <= upTo {
			taken = append(taken, m)
		} else {
			kept = append(kept, m)
		}
	}
	w.msgs = kept
	st := w.stats
	st.Ends = maps.Clone(st.Ends)
	w.stats = WatchStats{}
	return taken, st
}
