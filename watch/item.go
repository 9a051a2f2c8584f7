package watch

// Kind says what an Item is.
type Kind uint8

// The kinds of Item.
const (
	// KindEvents is one revision's events that the filter takes: Events,
	// and their JSON, {"revision":R,"events":[...]}.
	KindEvents Kind = iota + 1
	// KindProgress says every event the filter takes up to Revision was
	// sent: resuming after Revision is exact.
	KindProgress
	// KindEnd is the last item of a stream: Reason says why, and Revision
	// is where to resume (the first revision the stream did not cover).
	KindEnd
)

// Why the hub ends a stream; an Item of KindEnd carries one.
const (
	ReasonOverflow = "overflow" // its queue was full: the client did not read fast enough
	ReasonReset    = "reset"    // the state was replaced by a snapshot from the leader
	ReasonStopping = "stopping" // the member stops
	// ReasonRestarted: the hub panicked and was rebuilt (hub_rebuild.go);
	// the stream resumes from the history, as after a reset.
	ReasonRestarted = "restarted"
)

// Item is one thing a stream sends its client.
type Item struct {
	Kind     Kind
	Revision uint64
	// Events is the events of a KindEvents item. It is shared with other
	// watchers: read it, never change it.
	Events *Events
	Reason string // of a KindEnd item
}

// JSON is a KindEvents item's JSON, encoded once for every watcher that
// shares its Events, and only if a watcher asks.
func (it Item) JSON() []byte { return it.Events.JSON() }
