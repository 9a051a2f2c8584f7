package watch

import (
	"time"

	"go.uber.org/zap"

	"github.com/raftkv/node/metrics"
)

// HubConfig configures a Hub.
type HubConfig struct {
	// Revision is the store's revision when the hub starts, all of it in
	// the db durably: the kv actor's events follow it.
	Revision uint64
	// ProgressInterval is how often each live watcher gets a progress
	// mark; zero means DefaultProgressInterval.
	ProgressInterval time.Duration
	// MaxQueuedEvents and MaxQueuedBytes bound what waits in one watcher's
	// queue: revisions, and the bytes of their JSON. Past either, the
	// watcher ends with ReasonOverflow. Zero means the default.
	MaxQueuedEvents int
	MaxQueuedBytes  int
	// MaxWatchers bounds the watches open at once, zero meaning
	// DefaultMaxWatchers: every apply costs the hub work for each.
	MaxWatchers int
	// History, if set, is the member's shared history, which the hub
	// tells of compactions and of the state being replaced.
	History *SharedHistory
	Logger  *zap.Logger   // nil: no logging
	Metrics *metrics.Node // nil makes an unregistered one
}

// Defaults of HubConfig. The queue bounds are docs/api.md's: a client that
// falls this far behind reconnects from where it is, served by the db's
// history, instead of holding the member's memory.
const (
	DefaultProgressInterval = 10 * time.Second
	DefaultMaxQueuedEvents  = 1024
	DefaultMaxQueuedBytes   = 8 << 20
	DefaultMaxWatchers      = 10_000
)

func (c HubConfig) withDefaults() HubConfig {
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = DefaultProgressInterval
	}
	if c.MaxQueuedEvents <= 0 {
		c.MaxQueuedEvents = DefaultMaxQueuedEvents
	}
	if c.MaxQueuedBytes <= 0 {
		c.MaxQueuedBytes = DefaultMaxQueuedBytes
	}
	if c.MaxWatchers <= 0 {
		c.MaxWatchers = DefaultMaxWatchers
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Metrics == nil {
		c.Metrics = metrics.New(nil)
	}
	return c
}
