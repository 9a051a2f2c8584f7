package tlsfiles

import (
	"crypto/tls"
	"time"

	"go.uber.org/zap"
)

// ServerConfigClock is ServerConfig looking at the files at most once per
// interval of now: tests pass 0 (every handshake looks) or a clock they
// move, and never sleep.
func ServerConfigClock(f Files, lg *zap.Logger, interval time.Duration, now func() time.Time) (*tls.Config, error) {
	return serverConfig(f, lg, clock{interval: interval, now: now})
}

// NewClientClock is NewClient on a clock of the test's.
func NewClientClock(f Files, lg *zap.Logger, interval time.Duration, now func() time.Time) (*Client, error) {
	return newClient(f, lg, clock{interval: interval, now: now})
}

// CheckInterval is the interval of ServerConfig and NewClient.
const CheckInterval = checkInterval
