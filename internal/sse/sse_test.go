package sse

import (
	"bufio"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

type event struct{ Type, ID, Data string }

// Every case read whole, a byte at a time and in halves, through a buffer
// shorter than some lines and through a large one.
func TestReader(t *testing.T) {
	long := strings.Repeat("x", 100) // longer than the small buffer
	cases := []struct {
		name   string
		stream string
		want   []event
	}{
		{"the node's stream", "retry: 1000\n\n" +
			"id: 58\ndata: {\"revision\":58}\n\n" +
			"event: progress\nid: 75\ndata: {\"revision\":75}\n\n" +
			"event: end\nid: 79\ndata: {\"resume_revision\":80,\"reason\":\"reset\"}\n\n",
			[]event{{ID: "58", Data: `{"revision":58}`}, {Type: "progress", ID: "75", Data: `{"revision":75}`},
				{Type: "end", ID: "79", Data: `{"resume_revision":80,"reason":"reset"}`}}},
		{"CRLF, comments, no space after the colon, a byte order mark", "\ufeffid:1\r\n: a comment\r\ndata:a\r\n\r\n",
			[]event{{ID: "1", Data: "a"}}},
		{"data lines are joined; a field with no colon is its name", "data: a\ndata\ndata: c\n\n",
			[]event{{Data: "a\n\nc"}}},
		{"multi-line data across CRLF", "id: 58\r\ndata: {\"revision\":58,\r\ndata:\"events\":[]}\r\n\r\n",
			[]event{{ID: "58", Data: "{\"revision\":58,\n\"events\":[]}"}}},
		{"the id persists; an event without data is not dispatched but its id counts", "id: 1\ndata: a\n\nid: 2\n\ndata: b\n\n",
			[]event{{ID: "1", Data: "a"}, {ID: "2", Data: "b"}}},
		{"an event type does not outlive an undispatched event", "event: progress\n\ndata: b\n\n",
			[]event{{Data: "b"}}},
		{"type message is the default; an id with NUL is ignored", "event: message\nid: 3\nid: 4\x00\ndata: a\n\n",
			[]event{{ID: "3", Data: "a"}}},
		{"a long line", "data: " + long + "\n\n", []event{{Data: long}}},
		{"an event cut off by the end is not dispatched", "id: 1\ndata: a\n\nid: 2\ndata: b\n",
			[]event{{ID: "1", Data: "a"}}},
		{"a line cut off by the end", "id: 1\ndata: a\n\nid: 2\ndata: b", []event{{ID: "1", Data: "a"}}},
	}
	readers := map[string]func(string) io.Reader{
		"whole":       func(s string) io.Reader { return strings.NewReader(s) },
		"byte a time": func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
		"half reads":  func(s string) io.Reader { return iotest.HalfReader(strings.NewReader(s)) },
	}
	for _, tc := range cases {
		for name, r := range readers {
			for _, size := range []int{16, 4096} {
				sr := NewReader(bufio.NewReaderSize(r(tc.stream), size))
				var got []event
				var err error
				for {
					var ev Event
					if ev, err = sr.Next(); err != nil {
						break
					}
					got = append(got, event{string(ev.Type), string(ev.ID), string(ev.Data)})
				}
				if !errors.Is(err, io.EOF) {
					t.Errorf("%s, %s, buffer %d: err = %v, want io.EOF", tc.name, name, size, err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("%s, %s, buffer %d:\ngot  %q\nwant %q", tc.name, name, size, got, tc.want)
				}
			}
		}
	}
}
