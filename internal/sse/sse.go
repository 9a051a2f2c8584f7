// Package sse reads streams of Server-Sent Events, as the node's watch
// streams send them (docs/api.md, "Watch"), for the programs that follow
// them: the load generator and the fault suite.
package sse

import (
	"bufio"
	"bytes"
)

// Reader reads a stream of Server-Sent Events as the HTML standard
// defines them: lines of "field: value" (one optional space after the
// colon), comments starting with ':', data lines joined with '\n', and an
// event dispatched at a blank line unless it has no data. Lines end with
// "\n" or "\r\n" (a lone "\r", which the standard also allows, is not
// taken: the node does not send it). An event cut off by the end of the
// stream is not dispatched, so an event is received whole or not at all.
// The retry field and unknown fields are ignored. It reads through one
// bufio.Reader and copies only the fields it keeps, into buffers reused
// from event to event, so that a thousand readers cost little.
type Reader struct {
	r       *bufio.Reader
	long    []byte // a line longer than r's buffer, put together
	event   []byte // the event type being read; empty means "message"
	data    []byte
	id      []byte // the last event id, which persists across events
	started bool   // past the first line, where a byte order mark may be
	reset   bool   // the last call dispatched: clear event and data first
}

// Event is one dispatched event; its slices are valid until the next call
// to Next.
type Event struct {
	Type []byte // empty for the default type, "message"
	Data []byte
	// ID is the last event id when the event was dispatched: as the
	// standard keeps it, it persists from event to event until an id
	// field changes it.
	ID []byte
}

// NewReader reads events from r.
func NewReader(r *bufio.Reader) *Reader { return &Reader{r: r} }

// Next reads up to the next dispatched event. It returns the reader's
// error (io.EOF at the end of the stream) when there is none.
func (s *Reader) Next() (Event, error) {
	if s.reset {
		s.event, s.data, s.reset = s.event[:0], s.data[:0], false
	}
	for {
		line, err := s.line()
		if err != nil {
			return Event{}, err
		}
		if len(line) == 0 {
			if len(s.data) == 0 {
				s.event = s.event[:0]
				continue
			}
			s.reset = true
			typ := s.event
			if string(typ) == "message" {
				typ = typ[:0]
			}
			return Event{Type: typ, Data: s.data[:len(s.data)-1], ID: s.id}, nil
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i == 0 {
			continue // a comment
		} else if i > 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "event":
			s.event = append(s.event[:0], value...)
		case "data":
			s.data = append(append(s.data, value...), '\n')
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				s.id = append(s.id[:0], value...)
			}
		}
	}
}

// line reads one line without its end.
func (s *Reader) line() ([]byte, error) {
	b, err := s.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		s.long = append(s.long[:0], b...)
		for err == bufio.ErrBufferFull {
			b, err = s.r.ReadSlice('\n')
			s.long = append(s.long, b...)
		}
		b = s.long
	}
	if err != nil {
		return nil, err
	}
	b = b[:len(b)-1]
	if len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	if !s.started {
		s.started = true
		b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	}
	return b, nil
}
