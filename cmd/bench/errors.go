package main

import "errors"

// errUsage marks a bad command line: the command exits with status 2.
var errUsage = errors.New("bad usage")

// errNoLeader is returned by leader discovery when no reachable endpoint
// reports itself as the leader.
var errNoLeader = errors.New("no endpoint reports itself as the leader")

// errPreload is returned when a key of the get or mixed key space could not
// be written before the timed phase; reads of it would then fail for a
// reason the benchmark did not cause.
var errPreload = errors.New("preloading the key space failed")

// errNothingAcknowledged is returned when a run ended without a single
// acknowledged operation, so there is nothing to measure.
var errNothingAcknowledged = errors.New("no operation was acknowledged")
