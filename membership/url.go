package membership

import (
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// URLError is a URL refused: as it was given, and why.
type URLError struct {
	URL string
	Why string
}

func (e *URLError) Error() string { return strconv.Quote(e.URL) + ": " + e.Why }

// ParseURL checks a URL a member is reached at (its peer URL, or a client
// URL it publishes): http:// or https://, a host and a port from 1 to 65535,
// nothing else (a lone "/" path is dropped). It returns the URL in the one
// form it is kept in, scheme://host:port with the port in decimal without
// leading zeros, so that one URL cannot pass for two (:022379 is :22379).
// The host is kept as given, not lower-cased. A refusal is a *URLError.
func ParseURL(s string) (*url.URL, error) { return parseURL(s, false) }

// ParseListenURL is ParseURL for a URL to listen on, whose host may be
// left out to mean every interface (http://:2380).
func ParseListenURL(s string) (*url.URL, error) { return parseURL(s, true) }

// PeerURL is ParseURL's form of a peer URL as a string: how --cluster, a
// member add, member records and conf changes write it.
func PeerURL(s string) (string, error) {
	u, err := ParseURL(s)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

// SameURL says whether a and b are one URL, perhaps written two ways. A
// URL that ParseURL refuses (one a raftexample member or an earlier
// version wrote) is compared as written.
func SameURL(a, b string) bool {
	if a == b {
		return true
	}
	ua, err1 := PeerURL(a)
	ub, err2 := PeerURL(b)
	return err1 == nil && err2 == nil && ua == ub
}

func parseURL(s string, listen bool) (*url.URL, error) {
	bad := func(why string) error { return &URLError{URL: s, Why: why} }
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, bad(err.Error())
	}
	const form = "want scheme://host:port"
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, bad("scheme must be http or https")
	case u.Opaque != "" || (u.Hostname() == "" && !listen):
		return nil, bad(form + ", with a host")
	case u.User != nil:
		return nil, bad(form + ", with no user")
	case u.Path != "" && u.Path != "/":
		return nil, bad(form + ", with no path")
	case u.RawQuery != "" || u.ForceQuery:
		return nil, bad(form + ", with no query")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return nil, bad(form + ", with no fragment")
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil || port < 1 || port > 65535 {
		return nil, bad(form + ", with a port from 1 to 65535")
	}
	// url.URL.String escapes an IPv6 zone ("%25") as it came.
	return &url.URL{Scheme: u.Scheme, Host: net.JoinHostPort(u.Hostname(), strconv.Itoa(port))}, nil
}
