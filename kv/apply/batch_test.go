package apply

import (
	"errors"
	"fmt"
	"testing"
)

func TestBatchCodec(t *testing.T) {
	cmds := [][]byte{
		Command{Op: OpPut, ReqID: 7, Key: "a", Value: []byte("1")}.encode(),
		Command{Op: OpDelete, ReqID: 8, Key: "b"}.encode(),
	}
	data := EncodeBatch(99, cmds, len(cmds[0])+len(cmds[1]))
	c, err := nativeFormat{}.Decode(data)
	if err != nil || c.Op != OpBatch || c.ReqID != 99 {
		t.Fatalf("decode = %+v, %v", c, err)
	}
	var got []string
	if err := decodeBatch(c.Value, func(c Command) error {
		got = append(got, fmt.Sprintf("%d %d %s", c.Op, c.ReqID, c.Key))
		return nil
	}); err != nil || fmt.Sprint(got) != "[1 7 a 2 8 b]" {
		t.Fatalf("commands %v, %v", got, err)
	}

	bad := []struct {
		name string
		data []byte
	}{
		{"no batch id", []byte{byte(OpBatch)}},
		{"length past the end", append(EncodeBatch(1, nil, 0), 5, 1)},
		{"non-canonical length", append(EncodeBatch(1, nil, 0), 0x81, 0x00)},
		{"bad command inside", append(EncodeBatch(1, nil, 0), 1, 9)},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			c, err := nativeFormat{}.Decode(tc.data)
			if err == nil {
				err = decodeBatch(c.Value, func(Command) error { return nil })
			}
			if !errors.Is(err, ErrBadCommand) {
				t.Fatalf("err = %v, want ErrBadCommand", err)
			}
		})
	}
}
