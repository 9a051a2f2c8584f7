// Package backup owns the format of a member's backup file and the
// client side of taking one: a backup is the member's bbolt db as of one
// commit, followed by the SHA-256 of those bytes (32 bytes), as etcd's
// snapshot files are, so that a copy cut short or changed is refused
// before anything is made from it. Both client APIs serve the stream
// (GET /v1/snapshot, etcd's Maintenance.Snapshot); `node snapshot save`
// and `node snapshot status` use this package.
package backup
