// Package failpoint is the tests' client of gofail's HTTP endpoint in a
// failpoint build of cmd/node (scripts/build-failpoints.sh, GOFAIL_HTTP):
// switching a failpoint to a term, off again, and reading how many times
// its term ran. The e2e tests and the fault suite use it.
package failpoint

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Client talks to one member's gofail endpoint at Addr (host:port).
type Client struct {
	Addr string
	// HTTP is the client to use; nil is http.DefaultClient.
	HTTP *http.Client
}

// Set switches failpoint name to term (`panic("x")`, `1*panic("x")`,
// `sleep(100)`, `return`, ...), as `curl -XPUT -d term http://addr/name`.
func (c Client) Set(name, term string) error {
	_, err := c.do(http.MethodPut, "/"+name, term, http.StatusNoContent)
	return err
}

// Clear switches failpoint name off.
func (c Client) Clear(name string) error {
	_, err := c.do(http.MethodDelete, "/"+name, "", http.StatusNoContent)
	return err
}

// Count is how many times failpoint name's term ran since it was set.
func (c Client) Count(name string) (int, error) {
	body, err := c.do(http.MethodGet, "/"+name+"/count", "", http.StatusOK)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(body))
	if err != nil {
		return 0, fmt.Errorf("GET %s/count at %s: %q is no count", name, c.Addr, body)
	}
	return n, nil
}

// List is gofail's GET /: a line name=term per failpoint, "name=" for one
// that is off.
func (c Client) List() (string, error) {
	return c.do(http.MethodGet, "/", "", http.StatusOK)
}

func (c Client) do(method, path, body string, want int) (string, error) {
	req, err := http.NewRequest(method, "http://"+c.Addr+path, strings.NewReader(body))
	if err != nil {
		return "", err
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("%s %s at %s: %w", method, path, c.Addr, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("%s %s at %s: %w", method, path, c.Addr, err)
	}
	if resp.StatusCode != want {
		return "", fmt.Errorf("%s %s at %s: %d %q, want %d", method, path, c.Addr, resp.StatusCode, b, want)
	}
	return string(b), nil
}
