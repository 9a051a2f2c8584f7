// Package redact keeps user data out of log lines. A log line at info or
// above may name a key, cut to MaxKeyBytes bytes and quoted, with the key's
// length beside it; it never holds a value, only a value's length. Error
// text that reaches a log line is cut to a bounded length (Text, Error).
//
// Production packages import it for every log call that would otherwise
// print a key, a value, or an error of unbounded length.
package redact

import (
	"strconv"
	"unicode/utf8"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// MaxKeyBytes is the most bytes of a key that reach a log line.
const MaxKeyBytes = 64

// MaxErrorBytes is the most bytes of an error's text that reach a log
// line through Error or Text.
const MaxErrorBytes = 512

// Key logs a key as two fields: "key", at most MaxKeyBytes bytes of it
// quoted as %q does (so control characters and invalid UTF-8 are escaped),
// and "key_bytes", its full length.
func Key(k string) zap.Field { return NamedKey("key", k) }

// KeyBytes is Key for a key held in a byte slice.
func KeyBytes(k []byte) zap.Field { return NamedKey("key", string(k)) }

// NamedKey is Key under another name, e.g. "start" and "end" for a range:
// the fields are name and name+"_bytes".
func NamedKey(name, k string) zap.Field {
	return zap.Inline(keyField{name: name, key: k})
}

// KeyString is the form of Key for text that is not a zap field (an error
// message, a fmt format): the cut key quoted, and "(N bytes)" when the key
// was cut.
func KeyString(k string) string {
	cut, ok := cutKey(k)
	q := strconv.Quote(cut)
	if ok {
		return q
	}
	return q + "…(" + strconv.Itoa(len(k)) + " bytes)"
}

// Value logs only the length of a value, as "value_bytes": a value's
// content never reaches a log line.
func Value(v []byte) zap.Field { return zap.Int("value_bytes", len(v)) }

// Text cuts s to at most max bytes (at a rune boundary when s is valid
// UTF-8), marking the cut with "…(N bytes)". max <= 0 means MaxErrorBytes.
func Text(s string, max int) string {
	if max <= 0 {
		max = MaxErrorBytes
	}
	if len(s) <= max {
		return s
	}
	return cutRunes(s, max) + "…(" + strconv.Itoa(len(s)) + " bytes)"
}

// Error logs err as "error" with its text cut to MaxErrorBytes. A nil err
// gives a field that logs nothing, as zap.Error does.
func Error(err error) zap.Field {
	if err == nil {
		return zap.Skip()
	}
	return zap.String("error", Text(err.Error(), MaxErrorBytes))
}

type keyField struct{ name, key string }

func (f keyField) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	cut, _ := cutKey(f.key)
	enc.AddString(f.name, strconv.Quote(cut))
	enc.AddInt(f.name+"_bytes", len(f.key))
	return nil
}

// cutKey returns at most MaxKeyBytes bytes of k and whether k was whole.
func cutKey(k string) (string, bool) {
	if len(k) <= MaxKeyBytes {
		return k, true
	}
	return cutRunes(k, MaxKeyBytes), false
}

// cutRunes returns the first n bytes of s, fewer when that would split a
// UTF-8 encoded rune (bytes that are not valid UTF-8 are cut anywhere).
func cutRunes(s string, n int) string {
	if n >= len(s) {
		return s
	}
	i := n
	// Back off at most utf8.UTFMax-1 continuation bytes to a rune start.
	for j := 0; j < utf8.UTFMax-1 && i > 0 && !utf8.RuneStart(s[i]); j++ {
		i--
	}
	if !utf8.RuneStart(s[i]) {
		i = n // not UTF-8 here: cut at n; %q escapes the stray bytes
	}
	return s[:i]
}
