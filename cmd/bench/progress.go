package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

const (
	progressEvery = 250 * time.Millisecond
	progressWidth = 30
)

// progressBar redraws one terminal line about four times a second from
// the shared counters; it reads only atomics, so the clients never wait
// for it.
type progressBar struct {
	out      io.Writer
	ctl      *control
	start    time.Time
	duration time.Duration // of a --duration run; the bar tracks requests of a --total run
	quit     chan struct{}
	done     chan struct{}
	lastN    uint64
	lastAt   time.Time
}

// isTerminal reports whether f is a character device, where a bar redrawn
// with carriage returns makes sense; in a file or pipe it would be noise.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func startProgress(out io.Writer, ctl *control, start time.Time, duration time.Duration) *progressBar {
	p := &progressBar{
		out:      out,
		ctl:      ctl,
		start:    start,
		duration: duration,
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
		lastAt:   start,
	}
	go p.run()
	return p
}

func (p *progressBar) run() {
	defer close(p.done)
	t := time.NewTicker(progressEvery)
	defer t.Stop()
	for {
		select {
		case <-p.quit:
			p.draw(time.Now())
			_, _ = io.WriteString(p.out, "\n")
			return
		case now := <-t.C:
			p.draw(now)
		}
	}
}

// finish draws the last state and returns once the bar's goroutine is gone.
func (p *progressBar) finish() {
	close(p.quit)
	<-p.done
}

func (p *progressBar) draw(now time.Time) {
	ok, failed := p.ctl.ok.Load(), p.ctl.failed.Load()
	n := ok + failed
	elapsed := now.Sub(p.start)
	// The rate over the last interval shows stalls (an election, say) that
	// an average since the start would smooth away.
	var rate float64
	if dt := now.Sub(p.lastAt).Seconds(); dt > 0 {
		rate = float64(n-p.lastN) / dt
	}
	p.lastN, p.lastAt = n, now

	var frac float64
	switch {
	case p.ctl.total > 0:
		frac = float64(n) / float64(p.ctl.total)
	case p.duration > 0:
		frac = elapsed.Seconds() / p.duration.Seconds()
	}
	filled := int(min(max(frac, 0), 1) * progressWidth)
	bar := strings.Repeat("#", filled) + strings.Repeat(".", progressWidth-filled)
	// \x1b[K clears what a longer previous line left behind.
	_, _ = fmt.Fprintf(p.out, "\r[%s] %d ok  %d errors  %.0f ops/s  elapsed %s\x1b[K",
		bar, ok, failed, rate, elapsed.Truncate(100*time.Millisecond))
}
