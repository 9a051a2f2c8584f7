package main

import "bytes"

// jsonCursor walks the node's JSON answers in place: it reads the few
// fields a command checks and skips the rest, without allocating and
// without decoding what it skips. It is lenient where leniency costs no
// correctness (a stray comma between fields passes); anything it cannot
// walk sets bad, and every method is then a no-op.
type jsonCursor struct {
	b   []byte
	i   int
	bad bool
}

func (c *jsonCursor) ws() {
	for c.i < len(c.b) {
		switch c.b[c.i] {
		case ' ', '\t', '\n', '\r':
			c.i++
		default:
			return
		}
	}
}

// peek is the next byte after white space, 0 at the end.
func (c *jsonCursor) peek() byte {
	c.ws()
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

// str reads a string and returns its raw content, escapes left as they
// are; escaped says whether there were any.
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
	for c.i < len(c.b) {
		switch c.b[c.i] {
		case '"':
			s = c.b[start:c.i]
			c.i++
			return s, escaped
		case '\\':
			escaped = true
			c.i += 2
		default:
			c.i++
		}
	}
	c.i = len(c.b)
	c.bad = true
	return nil, false
}

// uint reads a non-negative integer.
func (c *jsonCursor) uint() uint64 {
	c.ws()
	if c.bad {
		return 0
	}
	start := c.i
	var v uint64
	for c.i < len(c.b) && c.b[c.i] >= '0' && c.b[c.i] <= '9' {
		d := uint64(c.b[c.i] - '0')
		if v > (1<<64-1-d)/10 {
			c.bad = true
			return 0
		}
		v = v*10 + d
		c.i++
	}
	if c.i == start {
		c.bad = true
	}
	return v
}

// boolean reads true or false.
func (c *jsonCursor) boolean() bool {
	c.ws()
	if c.bad {
		return false
	}
	switch {
	case bytes.HasPrefix(c.b[c.i:], []byte("true")):
		c.i += 4
		return true
	case bytes.HasPrefix(c.b[c.i:], []byte("false")):
		c.i += 5
		return false
	}
	c.bad = true
	return false
}

// skip passes over one value of any kind.
func (c *jsonCursor) skip() {
	switch c.peek() {
	case '"':
		c.str()
	case '{', '[':
		depth := 0
		for c.i < len(c.b) {
			switch c.b[c.i] {
			case '"':
				c.str()
				if c.bad {
					return
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					c.i++
					return
				}
			}
			c.i++
		}
		c.bad = true
	case 0:
		c.bad = true
	default: // a number, true, false or null
		start := c.i
		for c.i < len(c.b) {
			switch c.b[c.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				if c.i == start {
					c.bad = true
				}
				return
			}
			c.i++
		}
	}
}

// field reads the name of the next field of the object the cursor is in,
// leaving the cursor at its value; false at the object's end. Call it first
// right after consume('{').
func (c *jsonCursor) field() (name []byte, ok bool) {
	switch c.peek() {
	case '}':
		c.i++
		return nil, false
	case ',':
		c.i++
	}
	if c.bad {
		return nil, false
	}
	name, _ = c.str()
	if !c.consume(':') {
		return nil, false
	}
	return name, true
}

// elem reports whether the array the cursor is in has another element,
// leaving the cursor at it. Call it first right after consume('[').
func (c *jsonCursor) elem() bool {
	switch c.peek() {
	case ']':
		c.i++
		return false
	case ',':
		c.i++
	}
	return !c.bad && c.peek() != 0
}

// end reports whether only white space is left, as after a whole answer.
func (c *jsonCursor) end() bool {
	return !c.bad && c.peek() == 0 && c.i >= len(c.b)
}

// topUint reads the unsigned integer field name of the object in b, a flat
// answer such as {"index":5,"revision":5}; ok is false when b is not an
// object or has no such field.
func topUint(b []byte, name string) (v uint64, ok bool) {
	c := jsonCursor{b: b}
	if !c.consume('{') {
		return 0, false
	}
	for f, more := c.field(); more; f, more = c.field() {
		if string(f) == name {
			v = c.uint()
			return v, !c.bad
		}
		c.skip()
	}
	return 0, false
}
