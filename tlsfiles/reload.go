package tlsfiles

import (
	"fmt"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
)

// checkInterval bounds how often handshakes look at the files. A stat is
// cheap next to a handshake, but a listener may take thousands of
// handshakes a second, and none of them needs a newer look than a second
// old: rotation tools write a new certificate hours or days before the old
// one expires, so a second's delay in seeing it costs nothing.
const checkInterval = time.Second

// clock decides when files are looked at again. Tests use an interval of
// zero (every handshake looks) or a clock they move, instead of sleeping.
type clock struct {
	interval time.Duration
	now      func() time.Time
}

// realClock is the clock of ServerConfig and NewClient.
func realClock() clock { return clock{interval: checkInterval, now: time.Now} }

// reloader holds what was read from some files and reads them again when
// one of them changed.
type reloader[T any] struct {
	what     string // for logs: "certificate", "trusted CAs"
	paths    []string
	load     func() (T, error)
	describe func(T) []zap.Field // of a reload, for logs
	missing  error               // wraps a failure to stat a file
	lg       *zap.Logger
	clock    clock

	// mu is held through a reload, so that concurrent handshakes read the
	// files once; they wait at most for one read of small files, once per
	// interval.
	mu     sync.Mutex
	cur    T
	stamps []os.FileInfo // of the files cur was read from
	next   time.Time     // no look at the files before then
}

// newReloader reads the files a first time; unlike a later reload, a
// failure is returned, since there is no previous material to keep.
func newReloader[T any](r *reloader[T]) (*reloader[T], error) {
	// Stat before reading: a change between the two is then seen at the
	// next look, at the cost of one needless reload; the other order
	// could record a new file's stamp for the old content and keep the
	// old content for good.
	stamps, err := r.statAll()
	if err != nil {
		return nil, err
	}
	if r.cur, err = r.load(); err != nil {
		return nil, err
	}
	r.stamps = stamps
	r.next = r.clock.now().Add(r.clock.interval)
	return r, nil
}

// get returns the current material, reloading it first when it is time to
// look and a file changed.
func (r *reloader[T]) get() T {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.now()
	if now.Before(r.next) {
		return r.cur
	}
	r.next = now.Add(r.clock.interval)
	stamps, err := r.statAll()
	if err == nil && sameStamps(stamps, r.stamps) {
		return r.cur
	}
	var v T
	if err == nil {
		v, err = r.load()
	}
	if err != nil {
		// The stamps stay those of the material kept, so the next look
		// tries again even if the files do not change in between.
		r.lg.Warn("tls: reloading failed, keeping the previous "+r.what,
			zap.Strings("files", r.paths), zap.Error(err))
		return r.cur
	}
	r.cur, r.stamps = v, stamps
	r.lg.Info("tls: reloaded the "+r.what, append(r.describe(v), zap.Strings("files", r.paths))...)
	return r.cur
}

func (r *reloader[T]) statAll() ([]os.FileInfo, error) {
	out := make([]os.FileInfo, len(r.paths))
	for i, p := range r.paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", r.missing, err)
		}
		out[i] = fi
	}
	return out, nil
}

// sameStamps compares identity besides modification time and size: a file
// replaced by rename, as rotation tools do, is then seen even when the new
// one has the same size and was written within the same clock tick.
func sameStamps(a, b []os.FileInfo) bool {
	for i := range a {
		if !os.SameFile(a[i], b[i]) || !a[i].ModTime().Equal(b[i].ModTime()) || a[i].Size() != b[i].Size() {
			return false
		}
	}
	return true
}
