package messages

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"testing"
)

// What AppendJSON writes is JSON that encoding/json reads back to the same
// key, value and revisions, for text and for bytes that are not UTF-8.
func TestKVJSON(t *testing.T) {
	type decoded struct {
		Key, Value, KeyB64, ValueB64 *string
		Create                       uint64 `json:"create_revision"`
		Mod                          uint64 `json:"mod_revision"`
		Version                      uint64 `json:"version"`
	}
	for _, c := range []struct {
		name       string
		key, value string
	}{
		{"text", "config/a", "hello world"},
		{"escapes", "q\"b\\s/\n\r\t\x01\x1f", "\u2028\u2029 <&> é 日本"},
		{"binary key", "k\xff\x00", "v"},
		{"binary value", "k", "\x80\x81\xfe"},
		{"empty value", "k", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			kv := KV{Key: c.key, Value: []byte(c.value), CreateRevision: 3, ModRevision: 9, Version: 2}
			b := kv.AppendJSON([]byte("x"), true)[1:]
			var raw map[string]any
			if err := json.Unmarshal(b, &raw); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			get := func(text, b64 string) string {
				if s, ok := raw[text].(string); ok {
					return s
				}
				s, _ := raw[b64].(string)
				d, err := base64.StdEncoding.DecodeString(s)
				if err != nil {
					t.Fatalf("%s: %s: %v", b, b64, err)
				}
				return string(d)
			}
			if k, v := get("key", "key_b64"), get("value", "value_b64"); k != c.key || v != c.value {
				t.Fatalf("%s read back as %q=%q", b, k, v)
			}
			if raw["create_revision"] != 3.0 || raw["mod_revision"] != 9.0 || raw["version"] != 2.0 {
				t.Fatalf("%s: revisions", b)
			}
			if _, err := json.Marshal(raw); err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte("\u2028")) {
				t.Fatalf("%s: unescaped U+2028", b)
			}
			if keysOnly := kv.AppendJSON(nil, false); bytes.Contains(keysOnly, []byte(`"value`)) {
				t.Fatalf("keys only: %s", keysOnly)
			}
		})
	}
}

func TestEventJSON(t *testing.T) {
	for _, c := range []struct {
		e    Event
		want string
	}{
		{Event{Type: EventPut, KV: KV{Key: "a", Value: []byte("1"), CreateRevision: 4, ModRevision: 7, Version: 2}},
			`{"type":"put","key":"a","value":"1","create_revision":4,"mod_revision":7,"version":2}`},
		{Event{Type: EventDelete, KV: KV{Key: "a", ModRevision: 8}}, `{"type":"delete","key":"a","mod_revision":8}`},
	} {
		if got := string(c.e.AppendJSON(nil)); got != c.want || !json.Valid([]byte(got)) {
			t.Errorf("got %s, want %s", got, c.want)
		}
	}
}
