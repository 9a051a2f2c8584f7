package backend

// Size is the db's size in bytes as of its last commit, and the part of it
// in use: what is not on bbolt's free list (free pages, and pages freed by
// transactions still open). The batch transaction's own pages are not
// counted until it commits: bbolt allocates them then.
func (b *Backend) Size() (size, inUse int64, err error) {
	tx, err := b.ReadTx()
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = tx.Rollback() }()
	size = tx.Size()
	st := tx.DB().Stats()
	free := int64(st.FreePageN+st.PendingPageN) * int64(tx.DB().Info().PageSize)
	return size, max(size-free, 0), nil
}
