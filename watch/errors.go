package watch

import "errors"

// ErrTooManyWatchers refuses a watch while the hub serves HubConfig.MaxWatchers
// already: each costs the hub work on every apply, and memory for its queue.
var ErrTooManyWatchers = errors.New("too many watchers on this member")
