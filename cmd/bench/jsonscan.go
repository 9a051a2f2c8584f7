package main

import (
	"bytes"
	"iter"
)

// jsonCursor walks the node's range answers and watch events in place,
// reading the few fields the generator checks and skipping the rest
// undecoded. encoding/json costs ten times as much there: about 100 µs more
// per range answer of 100 keys and 1.3 µs more per delivered event, CPU the
// generator would take from the members it shares the cores with. Anything
// it cannot walk sets bad, after which every method is a no-op.
type jsonCursor struct {
	b   []byte
	i   int
	bad bool
}

// peek is the next byte after white space, 0 at the end or once bad.
func (c *jsonCursor) peek() byte {
	for c.i < len(c.b) && isSpace(c.b[c.i]) {
		c.i++
	}
	if c.bad || c.i >= len(c.b) {
		return 0
	}
	return c.b[c.i]
}

func (c *jsonCursor) consume(ch byte) bool {
	if c.peek() != ch {
		c.bad = true
		return false
	}
	c.i++
	return true
}

// str reads a string's raw content, escapes left as they are; escaped says
// whether there were any.
func (c *jsonCursor) str() (s []byte, escaped bool) {
	if !c.consume('"') {
		return nil, false
	}
	start := c.i
	// Most strings have no escape: two vectorised searches find the end.
	if j := bytes.IndexByte(c.b[start:], '"'); j >= 0 && bytes.IndexByte(c.b[start:start+j], '\\') < 0 {
		c.i = start + j + 1
		return c.b[start : start+j], false
	}
	for ; c.i < len(c.b); c.i++ {
		if c.b[c.i] == '"' {
			c.i++
			return c.b[start : c.i-1], escaped
		}
		if c.b[c.i] == '\\' {
			escaped = true
			c.i++
		}
	}
	c.i, c.bad = len(c.b), true
	return nil, false
}

// uint reads a non-negative integer.
func (c *jsonCursor) uint() (v uint64) {
	c.peek()
	start := c.i
	for ; !c.bad && c.i < len(c.b) && c.b[c.i] >= '0' && c.b[c.i] <= '9'; c.i++ {
		d := uint64(c.b[c.i] - '0')
		c.bad = v > (1<<64-1-d)/10 // overflow
		v = v*10 + d
	}
	c.bad = c.bad || c.i == start
	return v
}

// each walks the object ('{') or array ('[') at the cursor, yielding with
// the cursor at each value and, in an object, the value's field name; the
// loop must read or skip the value.
func (c *jsonCursor) each(open byte) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		if !c.consume(open) || c.peek() == open+2 && c.consume(open+2) { // '}' or ']'
			return
		}
		for c.peek() != 0 { // else cut short, or bad already
			var name []byte
			if open == '{' {
				if name, _ = c.str(); !c.consume(':') {
					return
				}
			}
			if !yield(name) || c.peek() != ',' {
				c.consume(open + 2)
				return
			}
			c.i++
		}
		c.bad = true
	}
}

// skip passes over one value of any kind.
func (c *jsonCursor) skip() {
	switch c.peek() {
	case '"':
		c.str()
	case '{', '[':
		for depth := 0; ; {
			if c.i >= len(c.b) || c.bad {
				c.bad = true
				return
			}
			switch c.b[c.i] {
			case '"':
				c.str()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			if c.i++; depth == 0 {
				return
			}
		}
	case 0:
		c.bad = true
	default: // a number, true, false or null: up to the next delimiter
		start := c.i
		for c.i < len(c.b) && c.b[c.i] != ',' && c.b[c.i] != '}' && c.b[c.i] != ']' && !isSpace(c.b[c.i]) {
			c.i++
		}
		c.bad = c.i == start
	}
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// end reports whether only white space is left, as after a whole answer.
func (c *jsonCursor) end() bool {
	return c.peek() == 0 && !c.bad && c.i == len(c.b)
}

// topUint reads the unsigned integer field name of the object in b, such as
// {"index":5,"revision":5}; ok is false when it has none.
func topUint(b []byte, name string) (v uint64, ok bool) {
	c := jsonCursor{b: b}
	for f := range c.each('{') {
		if string(f) == name && !ok {
			v, ok = c.uint(), true
		} else {
			c.skip()
		}
	}
	return v, ok && !c.bad
}
