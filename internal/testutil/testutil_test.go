package testutil

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

// FreePorts never hands out a port twice, within a call or across calls.
func TestFreePortsNeverRepeat(t *testing.T) {
	seen := make(map[int]bool)
	for range 5 {
		for _, p := range FreePorts(t, 20) {
			if seen[p] {
				t.Fatalf("port %d handed out twice", p)
			}
			seen[p] = true
		}
	}
}

func TestBufferConcurrent(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for range 100 {
				_, _ = b.Write([]byte(strconv.Itoa(i)))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if n := len(b.String()); n != 400 {
		t.Fatalf("%d bytes, want 400", n)
	}
}

func TestPoll(t *testing.T) {
	n := 0
	if err := Poll(time.Second, time.Millisecond, func() error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	}); err != nil || n != 3 {
		t.Fatalf("Poll: %v after %d tries, want nil after 3", err, n)
	}
	errLast := errors.New("still not")
	err := Poll(10*time.Millisecond, time.Millisecond, func() error { return errLast })
	if !errors.Is(err, errLast) || !strings.Contains(err.Error(), "not done after 10ms") {
		t.Fatalf("Poll past its deadline: %v", err)
	}
}

func TestTail(t *testing.T) {
	if got := Tail("a\nb\n", 5); got != "a\nb\n" {
		t.Fatalf("Tail of a short text: %q", got)
	}
	if got := Tail("a\nb\nc\nd\n", 2); got != "[... 2 earlier lines]\nc\nd" {
		t.Fatalf("Tail: %q", got)
	}
}
