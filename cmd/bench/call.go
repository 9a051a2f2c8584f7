package main

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
)

// call is everything one request needs, allocated at once: net/http wants a
// fresh *http.Request per round trip (the transport may still hold the old
// one, and read its body, after an error), and putting the URL and the
// body reader in the same object saves two allocations.
type call struct {
	req  http.Request
	url  url.URL
	body bytes.Reader
}

// newCall builds a request to base with the given path and query. A nil
// value sends no body; a non-nil one, even empty, is sent with its exact
// Content-Length.
func newCall(base *url.URL, header http.Header, method, path, rawQuery string, value []byte) *http.Request {
	c := &call{}
	c.url = url.URL{Scheme: base.Scheme, Host: base.Host, Path: path, RawQuery: rawQuery}
	c.req = http.Request{
		Method:     method,
		URL:        &c.url,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     header,
		Host:       base.Host,
	}
	switch {
	case value == nil:
	case len(value) == 0:
		// A non-nil body with ContentLength 0 would be sent chunked as
		// being of unknown length.
		c.req.Body = http.NoBody
	default:
		c.body.Reset(value)
		// io.NopCloser over a *bytes.Reader, and no home-made closer: the
		// transport recognises this pair as in memory and sends header and
		// body in one write; any other body costs a second syscall and
		// packet per request.
		c.req.Body = io.NopCloser(&c.body)
		c.req.ContentLength = int64(len(value))
	}
	return &c.req
}
