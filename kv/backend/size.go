package backend

// Size is the db's size in bytes as the batch transaction sees it, and the
// part of it in use: what is not on bbolt's free list (free pages, and
// pages freed by transactions still open). The owner of the batch
// transaction calls it.
func (b *Backend) Size() (size, inUse int64) {
	size = b.tx.Size()
	st := b.db.Stats()
	free := int64(st.FreePageN+st.PendingPageN) * int64(b.db.Info().PageSize)
	return size, max(size-free, 0)
}
