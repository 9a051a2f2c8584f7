package messages

import (
	"encoding/base64"
	"strconv"
	"unicode/utf8"
)

// How keys and events read in the client API's JSON (ranges, transactions,
// watch streams). The encoding lives with the types so that the HTTP API and
// the watch hub, which encodes each event once for all its watchers, write
// the same thing.
//
// A key or value that is valid UTF-8 is a JSON string ("key", "value"), so
// text reads naturally; one that is not is base64 (standard, padded) under
// "key_b64" or "value_b64" instead, so that binary data survives.
//
// A lease id is a JSON string of its decimal digits, as etcd's JSON gateway
// writes an int64: a JavaScript client reads numbers as doubles, which
// cannot hold every id. A key attached to no lease has no "lease" field, so
// that the JSON of keys written without leases is what it was before them.

// AppendJSON appends kv as a JSON object; withValue false leaves the value
// out (a keys-only read).
func (kv KV) AppendJSON(b []byte, withValue bool) []byte {
	b = append(b, '{')
	b = kv.appendFields(b, withValue)
	return append(b, '}')
}

func (kv KV) appendFields(b []byte, withValue bool) []byte {
	b = appendBytesField(b, "key", kv.Key)
	if withValue {
		b = append(b, ',')
		b = appendBytesField(b, "value", string(kv.Value))
	}
	b = appendUint(b, "create_revision", kv.CreateRevision)
	b = appendUint(b, "mod_revision", kv.ModRevision)
	b = appendUint(b, "version", kv.Version)
	if kv.Lease != 0 {
		b = append(b, ',')
		b = appendLeaseID(b, "lease", kv.Lease)
	}
	return b
}

// AppendJSON appends l as a JSON object: "id", "granted_ttl", "ttl" (the
// remaining TTL) when known (Remaining ≥ 0: a list does not know it, and
// leaves it out rather than write a -1 a client could take for a TTL), and
// with withKeys "keys", a list of objects with "key" or "key_b64" each, so
// that a key that is not UTF-8 reads as it does everywhere else.
func (l Lease) AppendJSON(b []byte, withKeys bool) []byte {
	b = append(b, '{')
	b = appendLeaseID(b, "id", l.ID)
	b = appendInt(b, "granted_ttl", l.TTL)
	if l.Remaining >= 0 {
		b = appendInt(b, "ttl", l.Remaining)
	}
	if withKeys {
		b = append(b, `,"keys":[`...)
		for i, k := range l.Keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '{')
			b = appendBytesField(b, "key", k)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// AppendJSON appends e as a JSON object: "type" ("put" or "delete") and the
// key's fields; a delete has only the key and its mod_revision.
func (e Event) AppendJSON(b []byte) []byte {
	if e.Type == EventDelete {
		b = append(b, `{"type":"delete",`...)
		b = appendBytesField(b, "key", e.KV.Key)
		b = appendUint(b, "mod_revision", e.KV.ModRevision)
		return append(b, '}')
	}
	b = append(b, `{"type":"put",`...)
	b = e.KV.appendFields(b, true)
	return append(b, '}')
}

// appendBytesField appends "name":"s" when s is valid UTF-8, else
// "name_b64":"<base64 of s>".
func appendBytesField(b []byte, name, s string) []byte {
	b = append(b, '"')
	b = append(b, name...)
	if !utf8.ValidString(s) {
		b = append(b, `_b64":"`...)
		b = base64.StdEncoding.AppendEncode(b, []byte(s))
		return append(b, '"')
	}
	b = append(b, `":`...)
	return appendJSONString(b, s)
}

func appendUint(b []byte, name string, v uint64) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return strconv.AppendUint(b, v, 10)
}

func appendInt(b []byte, name string, v int64) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return strconv.AppendInt(b, v, 10)
}

// appendLeaseID appends "name":"<id>": a string, see above.
func appendLeaseID(b []byte, name string, id int64) []byte {
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, `":"`...)
	b = strconv.AppendInt(b, id, 10)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s, valid UTF-8, as a JSON string: quotes,
// backslashes and control characters escaped, and U+2028 and U+2029 too, as
// encoding/json does, so that the output is also valid JavaScript.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
