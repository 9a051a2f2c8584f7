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

// A key attached to a lease carries "lease", its id as a string (an int64
// a JavaScript client would round as a number); a key without one has no
// such field, so that answers about keys without leases are unchanged.
func TestKVLeaseJSON(t *testing.T) {
	for _, c := range []struct {
		name     string
		kv       KV
		withVal  bool
		want     string
		wantNone bool
	}{
		{"no lease", KV{Key: "a", Value: []byte("1"), CreateRevision: 1, ModRevision: 2, Version: 2}, true,
			`{"key":"a","value":"1","create_revision":1,"mod_revision":2,"version":2}`, true},
		{"a lease", KV{Key: "a", Value: []byte("1"), CreateRevision: 1, ModRevision: 2, Version: 2, Lease: 7587}, true,
			`{"key":"a","value":"1","create_revision":1,"mod_revision":2,"version":2,"lease":"7587"}`, false},
		{"keys only", KV{Key: "a", CreateRevision: 1, ModRevision: 2, Version: 2, Lease: 5}, false,
			`{"key":"a","create_revision":1,"mod_revision":2,"version":2,"lease":"5"}`, false},
		{"the largest id, a binary key", KV{Key: "\xff", Value: []byte{0x80}, CreateRevision: 1, ModRevision: 1, Version: 1, Lease: 1<<63 - 1}, true,
			`{"key_b64":"/w==","value_b64":"gA==","create_revision":1,"mod_revision":1,"version":1,"lease":"9223372036854775807"}`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := string(c.kv.AppendJSON(nil, c.withVal))
			if got != c.want || !json.Valid([]byte(got)) {
				t.Fatalf("got %s, want %s", got, c.want)
			}
			var back struct {
				Lease *string `json:"lease"`
			}
			if err := json.Unmarshal([]byte(got), &back); err != nil {
				t.Fatal(err)
			}
			if (back.Lease == nil) != c.wantNone {
				t.Fatalf("%s: lease field present %v, want %v", got, back.Lease != nil, !c.wantNone)
			}
		})
	}
}

// A put event shows the key's lease as a range read does; a delete, which
// has only the key and its revision, does not; prev_kv is a key like any.
func TestEventLeaseJSON(t *testing.T) {
	for _, c := range []struct {
		e    Event
		want string
	}{
		{Event{Type: EventPut, KV: KV{Key: "a", Value: []byte("1"), CreateRevision: 4, ModRevision: 7, Version: 2, Lease: 9}},
			`{"type":"put","key":"a","value":"1","create_revision":4,"mod_revision":7,"version":2,"lease":"9"}`},
		{Event{Type: EventDelete, KV: KV{Key: "a", ModRevision: 8, Lease: 9}}, `{"type":"delete","key":"a","mod_revision":8}`},
	} {
		if got := string(c.e.AppendJSON(nil)); got != c.want || !json.Valid([]byte(got)) {
			t.Errorf("got %s, want %s", got, c.want)
		}
	}
}

// Lease.AppendJSON writes the id as a string, the remaining TTL only when
// known, and keys, when asked, by the keys' UTF-8/base64 rule.
func TestLeaseJSON(t *testing.T) {
	for _, c := range []struct {
		name     string
		l        Lease
		withKeys bool
		want     string
	}{
		{"read", Lease{ID: 5, TTL: 10, Remaining: 7}, false, `{"id":"5","granted_ttl":10,"ttl":7}`},
		{"keys left out unless asked", Lease{ID: 5, TTL: 10, Remaining: 0, Keys: []string{"a"}}, false,
			`{"id":"5","granted_ttl":10,"ttl":0}`},
		{"remaining not known", Lease{ID: 5, TTL: 10, Remaining: -1}, false, `{"id":"5","granted_ttl":10}`},
		{"no keys", Lease{ID: 5, TTL: 10, Remaining: 7}, true, `{"id":"5","granted_ttl":10,"ttl":7,"keys":[]}`},
		{"keys, text and binary", Lease{ID: 1<<63 - 1, TTL: 10, Remaining: 7, Keys: []string{"a", "k\xff\x00", "q\"\u2028"}}, true,
			`{"id":"9223372036854775807","granted_ttl":10,"ttl":7,"keys":[{"key":"a"},{"key_b64":"a/8A"},{"key":"q\"\u2028"}]}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := c.l.AppendJSON([]byte("x"), c.withKeys)[1:]
			if string(got) != c.want || !json.Valid(got) {
				t.Fatalf("got %s, want %s", got, c.want)
			}
			if !c.withKeys {
				return
			}
			// Every key reads back byte for byte.
			var back struct {
				Keys []struct {
					Key    *string `json:"key"`
					KeyB64 *string `json:"key_b64"`
				}
			}
			if err := json.Unmarshal(got, &back); err != nil || len(back.Keys) != len(c.l.Keys) {
				t.Fatalf("%s: %v, %d keys", got, err, len(back.Keys))
			}
			for i, k := range back.Keys {
				var s string
				switch {
				case k.Key != nil:
					s = *k.Key
				case k.KeyB64 != nil:
					b, err := base64.StdEncoding.DecodeString(*k.KeyB64)
					if err != nil {
						t.Fatal(err)
					}
					s = string(b)
				}
				if s != c.l.Keys[i] {
					t.Errorf("key %d reads back as %q, want %q", i, s, c.l.Keys[i])
				}
			}
		})
	}
}
