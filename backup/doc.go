// Package backup owns the format of a member's backup file, the client
// side of taking one, and restoring one into a new cluster: a backup is
// the member's bbolt db as of one commit, followed by the SHA-256 of those
// bytes (32 bytes), as etcd's snapshot files are, so that a copy cut short
// or changed is refused before anything is made from it. Both client APIs
// serve the stream (GET /v1/snapshot, etcd's Maintenance.Snapshot); `node
// snapshot save`, `status` and `restore` use this package. Restore makes a
// member's data dir from a backup (store.Rebase on the db,
// persistence.CreateAt for the log), as etcdutl's snapshot restore does.
package backup
