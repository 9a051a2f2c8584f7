package main

import (
	"bytes"
	"iter"
)

// jsonCursor walks the node's JSON answers in place, reading the few fields
// a command checks and skipping the rest without decoding it: encoding/json
// would allocate for every answer and watch event, and a range of 10,000
// keys would cost the generator milliseconds. Anything it cannot walk sets
// bad, and every method is then a no-op.
type jsonCursor struct {
	b   []byte
	i   int
	bad bool
}

// peek is the next byte after white space, 0 at the end.
func (c *jsonCursor) peek() byte {
	for c.i < len(c.b) {
		switch c.b[c.i] {
		case ' ', '\t', '\n', '\r':
			c.i++
			continue
		}
		break
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
	if c.bad = c.bad || c.i == start; c.bad {
		return 0
	}
	return v
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
		for start := c.i; c.i < len(c.b); c.i++ {
			switch c.b[c.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				c.bad = c.i == start
				return
			}
		}
	}
}

// boolean reads true or false.
func (c *jsonCursor) boolean() (v, ok bool) {
	for _, lit := range []string{"false", "true"} {
		if c.peek() != 0 && bytes.HasPrefix(c.b[c.i:], []byte(lit)) {
			c.i += len(lit)
			return lit == "true", true
		}
	}
	c.bad = true
	return false, false
}

// fields walks the object at the cursor, yielding each field's name with
// the cursor at its value, which the loop must read or skip. A stray comma
// passes: leniency that costs no correctness.
func (c *jsonCursor) fields() iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for ok := c.consume('{'); ok; {
			if c.peek() == '}' {
				c.i++
				return
			}
			if c.peek() == ',' {
				c.i++
			}
			name, _ := c.str()
			ok = c.consume(':') && yield(name)
		}
	}
}

// elems walks the array at the cursor, once per element, with the cursor
// at it; the loop must read or skip it.
func (c *jsonCursor) elems() iter.Seq[int] {
	return func(yield func(int) bool) {
		for i, ok := 0, c.consume('['); ok; i++ {
			if c.peek() == ']' {
				c.i++
				return
			}
			if c.peek() == ',' {
				c.i++
			}
			ok = c.peek() != 0 && yield(i)
		}
	}
}

// end reports whether only white space is left, as after a whole answer.
func (c *jsonCursor) end() bool {
	return c.peek() == 0 && !c.bad && c.i >= len(c.b)
}

// topUint reads the unsigned integer field name of the flat object in b,
// such as {"index":5,"revision":5}; ok is false when it has none.
func topUint(b []byte, name string) (v uint64, ok bool) {
	c := jsonCursor{b: b}
	for f := range c.fields() {
		if string(f) == name {
			v = c.uint()
			return v, !c.bad
		}
		c.skip()
	}
	return 0, false
}
