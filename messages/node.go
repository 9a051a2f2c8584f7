package messages

// Fatal reports an error after which the node cannot go on safely (a WAL
// write or fsync failed, a snapshot could not be restored). The node stops
// every actor and exits non-zero; nothing is restarted with empty state.
// Sender: any actor. Receiver: the node's fatal handler (not an actor: a
// callback given to each actor at construction).
type Fatal struct {
	Component string
	Err       error
}

func (f Fatal) Error() string { return f.Component + ": " + f.Err.Error() }

func (f Fatal) Unwrap() error { return f.Err }
