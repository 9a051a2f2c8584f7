package apply

import (
	"encoding/binary"
	"fmt"

	"github.com/raftkv/node/kv/internal/wire"
)

// OpBatch is the native format's batch entry:
//
//	OpBatch | batch id (uvarint) | (command length (uvarint) | command)…
//
// Each command keeps its own request id, so each write is settled by its
// own id when the batch is applied. The batch id only lets the proposer
// fail the whole batch if raft refuses it, or if its framing is refused
// when applied.
const OpBatch Op = 3

// EncodeBatch writes cmds, encoded commands of size bytes in all, as one
// OpBatch entry proposed under id.
func EncodeBatch(id uint64, cmds [][]byte, size int) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64*(1+len(cmds))+size)
	b = append(b, byte(OpBatch))
	b = binary.AppendUvarint(b, id)
	for _, c := range cmds {
		b = wire.AppendBytes(b, c)
	}
	return b
}

// decodeBatch calls fn for each command of an OpBatch entry's body (the
// bytes after the batch id), stopping at the first error.
func decodeBatch(body []byte, fn func(Command) error) error {
	cmds, err := splitBatch(body)
	if err != nil {
		return err
	}
	for _, data := range cmds {
		c, err := decodeCommand(data)
		if err != nil {
			return fmt.Errorf("batch: %w", err)
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

// splitBatch cuts an OpBatch entry's body into its commands' data, or
// refuses the whole body if its framing does not hold: then no command of
// it can be trusted to be the one proposed.
func splitBatch(body []byte) ([][]byte, error) {
	var cmds [][]byte
	for len(body) > 0 {
		n, k := binary.Uvarint(body)
		if k <= 0 || k != wire.UvarintLen(n) || n > uint64(len(body)-k) {
			return nil, fmt.Errorf("%w: batch command length", ErrBadCommand)
		}
		cmds = append(cmds, body[k:k+int(n)])
		body = body[k+int(n):]
	}
	return cmds, nil
}
