package watch

// SetBeforeDispatch makes h run f before it hands each revision out, for
// this package's tests of a hub that panics (hub_rebuild.go).
func SetBeforeDispatch(h *Hub, f func()) { h.beforeDispatch = f }
