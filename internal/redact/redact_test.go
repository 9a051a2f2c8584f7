package redact

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func logged(t *testing.T, fields ...zap.Field) map[string]any {
	t.Helper()
	core, obs := observer.New(zapcore.DebugLevel)
	zap.New(core).Info("x", fields...)
	entries := obs.All()
	if len(entries) != 1 {
		t.Fatalf("got %d entries", len(entries))
	}
	return entries[0].ContextMap()
}

func TestKey(t *testing.T) {
	long := strings.Repeat("k", 100)
	cases := []struct {
		name, key, want string
	}{
		{"short", "user/1", `"user/1"`},
		{"empty", "", `""`},
		{"exactly 64", strings.Repeat("a", 64), `"` + strings.Repeat("a", 64) + `"`},
		{"long", long, `"` + strings.Repeat("k", 64) + `"`},
		{"control bytes escaped", "a\x1b[31m\nb", `"a\x1b[31m\nb"`},
		{"invalid utf8 escaped", "a\xffb", `"a\xffb"`},
		// 63 ASCII bytes and a 3-byte rune: cut before the rune.
		{"rune not split", strings.Repeat("a", 63) + "€x", `"` + strings.Repeat("a", 63) + `"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := logged(t, Key(c.key))
			if m["key"] != c.want {
				t.Errorf("key = %v, want %s", m["key"], c.want)
			}
			if fmt.Sprint(m["key_bytes"]) != fmt.Sprint(len(c.key)) {
				t.Errorf("key_bytes = %v, want %d", m["key_bytes"], len(c.key))
			}
			m = logged(t, KeyBytes([]byte(c.key)))
			if m["key"] != c.want {
				t.Errorf("KeyBytes: key = %v, want %s", m["key"], c.want)
			}
		})
	}
}

func TestNamedKey(t *testing.T) {
	m := logged(t, NamedKey("start", "a"), NamedKey("end", strings.Repeat("z", 70)))
	if m["start"] != `"a"` || fmt.Sprint(m["start_bytes"]) != "1" {
		t.Errorf("start: %v", m)
	}
	if m["end"] != `"`+strings.Repeat("z", 64)+`"` || fmt.Sprint(m["end_bytes"]) != "70" {
		t.Errorf("end: %v", m)
	}
}

func TestKeyString(t *testing.T) {
	if got := KeyString("k1"); got != `"k1"` {
		t.Errorf("short: %s", got)
	}
	got := KeyString(strings.Repeat("k", 200))
	want := `"` + strings.Repeat("k", 64) + `"…(200 bytes)`
	if got != want {
		t.Errorf("long: %s, want %s", got, want)
	}
}

func TestValue(t *testing.T) {
	m := logged(t, Value([]byte("secret value")))
	if len(m) != 1 || m["value_bytes"] != int64(12) {
		t.Errorf("got %v", m)
	}
}

func TestTextAndError(t *testing.T) {
	if got := Text("short", 10); got != "short" {
		t.Errorf("short: %q", got)
	}
	long := strings.Repeat("é", 600) // 1200 bytes
	got := Text(long, 0)
	if !strings.HasSuffix(got, "…(1200 bytes)") {
		t.Errorf("no cut mark: %q", got[len(got)-20:])
	}
	body := strings.TrimSuffix(got, "…(1200 bytes)")
	if len(body) > MaxErrorBytes || !utf8.ValidString(body) {
		t.Errorf("cut body: %d bytes, valid %v", len(body), utf8.ValidString(body))
	}
	m := logged(t, Error(errors.New(long)))
	if m["error"] != got {
		t.Errorf("Error field = %v", m["error"])
	}
	if m := logged(t, Error(nil)); len(m) != 0 {
		t.Errorf("nil error logged %v", m)
	}
}
