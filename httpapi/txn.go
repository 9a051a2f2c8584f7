package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/kv/store"
	"github.com/raftkv/node/messages"
)

// txnPath serves transactions: POST a txnBody.
const txnPath = "/v1/txn"

// txnBody is the JSON of a transaction (docs/api.md). Binary keys and
// values come as *_b64 instead.
type txnBody struct {
	Compare []compareBody `json:"compare"`
	Success []opBody      `json:"success"`
	Failure []opBody      `json:"failure"`
}

type compareBody struct {
	Key      *string `json:"key"`
	KeyB64   *string `json:"key_b64"`
	Target   string  `json:"target"`
	Op       string  `json:"op"`
	Value    *string `json:"value"`
	ValueB64 *string `json:"value_b64"`
	Number   *uint64 `json:"number"`
}

type opBody struct {
	Op        string   `json:"op"`
	Key       *string  `json:"key"`
	KeyB64    *string  `json:"key_b64"`
	End       *string  `json:"end"`
	EndB64    *string  `json:"end_b64"`
	Prefix    bool     `json:"prefix"`
	Value     *string  `json:"value"`
	ValueB64  *string  `json:"value_b64"`
	Lease     *leaseID `json:"lease"`
	Limit     int      `json:"limit"`
	KeysOnly  bool     `json:"keys_only"`
	CountOnly bool     `json:"count_only"`
}

var compareTargets = map[string]messages.CompareTarget{
	"value": messages.CompareValue, "version": messages.CompareVersion,
	"create_revision": messages.CompareCreateRevision, "mod_revision": messages.CompareModRevision,
}

var compareOps = map[string]messages.CompareOp{
	"=": messages.CompareEqual, "!=": messages.CompareNotEqual, "<": messages.CompareLess, ">": messages.CompareGreater,
}

var opTypes = map[string]messages.OpType{
	"get": messages.OpGet, "range": messages.OpRange, "put": messages.OpPut, "delete": messages.OpDelete,
}

// errTooLarge marks a transaction over the size bounds: 413, not 400.
var errTooLarge = errors.New("transaction too large")

// serveTxn runs a transaction; the answer says which branch ran and holds
// one result per operation of it.
func (h *handler) serveTxn(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		refuseMethod(w, r, "POST")
		return
	}
	if _, err := queryParams(r.URL.RawQuery, "POST /v1/txn"); err != nil {
		h.fail(w, r, err, true)
		return
	}
	body, ok := h.readBody(w, r)
	if !ok {
		return
	}
	t, ops, err := h.parseTxn(body)
	if err != nil {
		h.fail(w, r, err, true)
		return
	}
	res, err := h.askKV(t)
	if err != nil {
		h.fail(w, r, err, true)
		return
	}
	ran := ops[0]
	if !res.Succeeded {
		ran = ops[1]
	}
	if len(res.Results) != len(ran) {
		h.fail(w, r, fmt.Errorf("kv actor answered %d results for %d operations", len(res.Results), len(ran)), true)
		return
	}
	b := []byte(`{"index":`)
	b = strconv.AppendUint(b, res.Index, 10)
	b = append(b, `,"revision":`...)
	b = strconv.AppendUint(b, res.Revision, 10)
	b = append(b, `,"succeeded":`...)
	b = strconv.AppendBool(b, res.Succeeded)
	b = append(b, `,"results":[`...)
	for i, op := range ran {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendOpResult(b, op, res.Results[i])
	}
	b = append(b, "]}\n"...)
	w.Header().Set(hdrRevision, strconv.FormatUint(res.Revision, 10))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func appendOpResult(b []byte, op messages.TxnOp, res messages.OpResult) []byte {
	b = append(b, `{"op":"`...)
	switch op.Type {
	case messages.OpPut:
		return append(b, `put"}`...)
	case messages.OpDelete:
		b = append(b, `delete","deleted":`...)
		b = strconv.AppendInt(b, int64(res.Deleted), 10)
		return append(b, '}')
	case messages.OpGet:
		b = append(b, `get","kvs":`...)
		b = appendKVs(b, res.KVs, true)
	default:
		b = append(b, `range"`...)
		if !op.Range.CountOnly {
			b = append(b, `,"kvs":`...)
			b = appendKVs(b, res.KVs, !op.Range.KeysOnly)
			b = append(b, `,"more":`...)
			b = strconv.AppendBool(b, res.More)
		}
	}
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, int64(res.Count), 10)
	return append(b, '}')
}

// parseTxn reads a transaction body; ops are its branches, success first.
// Every error is the client's: errTooLarge for too many compares or
// operations, messages.ErrEmptyKey or ErrKeyTooLarge for a key no request
// may name, messages.ErrBadRequest for the rest.
func (h *handler) parseTxn(body []byte) (messages.Txn, [2][]messages.TxnOp, error) {
	t, ops, err := h.parseTxnBody(body)
	if err != nil && !errors.Is(err, errTooLarge) && !errors.Is(err, messages.ErrEmptyKey) && !errors.Is(err, messages.ErrKeyTooLarge) {
		err = fmt.Errorf("%w: %w", messages.ErrBadRequest, err)
	}
	return t, ops, err
}

func (h *handler) parseTxnBody(body []byte) (messages.Txn, [2][]messages.TxnOp, error) {
	var tb txnBody
	var ops [2][]messages.TxnOp
	if err := decodeBody(body, &tb); err != nil {
		return messages.Txn{}, ops, fmt.Errorf("transaction body: %w", err)
	}
	if n := len(tb.Compare); n > apply.MaxTxnCompares {
		return messages.Txn{}, ops, fmt.Errorf("%w: %d compares, at most %d", errTooLarge, n, apply.MaxTxnCompares)
	}
	for _, n := range []int{len(tb.Success), len(tb.Failure)} {
		if n > apply.MaxTxnOps {
			return messages.Txn{}, ops, fmt.Errorf("%w: %d operations in a branch, at most %d", errTooLarge, n, apply.MaxTxnOps)
		}
	}
	var t messages.Txn
	for i, c := range tb.Compare {
		mc, err := h.parseCompare(c)
		if err != nil {
			return t, ops, fmt.Errorf("compare %d: %w", i, err)
		}
		t.Compares = append(t.Compares, mc)
	}
	for bi, branch := range [][]opBody{tb.Success, tb.Failure} {
		for i, o := range branch {
			op, err := h.parseOp(o)
			if err != nil {
				return t, ops, fmt.Errorf("%s operation %d: %w", [2]string{"success", "failure"}[bi], i, err)
			}
			ops[bi] = append(ops[bi], op)
		}
	}
	t.Success, t.Failure = ops[0], ops[1]
	return t, ops, nil
}

// decodeBody decodes a request body that is one JSON object into v,
// refusing unknown fields (a misspelt field ignored would make a request
// do less than asked) and anything but white space after the value, even a
// stray } or ] (which json.Decoder.More does not see).
func decodeBody(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("more than one JSON value")
	}
	return nil
}

func (h *handler) parseCompare(c compareBody) (messages.Compare, error) {
	key, err := h.txnKey("key", c.Key, c.KeyB64)
	if err != nil {
		return messages.Compare{}, err
	}
	if err := messages.CheckKey(key); err != nil {
		return messages.Compare{}, err
	}
	mc := messages.Compare{Key: key, Target: compareTargets[c.Target], Op: compareOps[c.Op]}
	if mc.Target == 0 {
		return mc, fmt.Errorf("target %q: want value, version, create_revision or mod_revision", c.Target)
	}
	if mc.Op == 0 {
		return mc, fmt.Errorf("op %q: want =, !=, < or >", c.Op)
	}
	if mc.Target == messages.CompareValue {
		if c.Number != nil {
			return mc, errors.New("a value compare takes value (or value_b64), not number")
		}
		v, err := bytesField("value", c.Value, c.ValueB64)
		if err != nil {
			return mc, err
		}
		if v == nil {
			return mc, errors.New("a value compare needs value (or value_b64)")
		}
		mc.Value = v
		return mc, nil
	}
	if c.Value != nil || c.ValueB64 != nil || c.Number == nil {
		return mc, fmt.Errorf("a %s compare takes number", c.Target)
	}
	mc.Number = *c.Number
	return mc, nil
}

func (h *handler) parseOp(o opBody) (messages.TxnOp, error) {
	op := messages.TxnOp{Type: opTypes[o.Op]}
	if op.Type == 0 {
		return op, fmt.Errorf("op %q: want get, range, put or delete", o.Op)
	}
	key, err := h.txnKey("key", o.Key, o.KeyB64)
	if err != nil {
		return op, err
	}
	end, err := h.txnKey("end", o.End, o.EndB64)
	if err != nil {
		return op, err
	}
	value, err := bytesField("value", o.Value, o.ValueB64)
	if err != nil {
		return op, err
	}
	hasEnd := o.End != nil || o.EndB64 != nil
	ranged := hasEnd || o.Prefix
	if hasEnd && o.Prefix {
		return op, errors.New("give end or prefix, not both")
	}
	if (value != nil) != (op.Type == messages.OpPut) {
		return op, errors.New("a put takes value (or value_b64), and only a put")
	}
	if o.Lease != nil && op.Type != messages.OpPut {
		return op, errors.New("lease is for put: the key a put writes is attached to it")
	}
	if (o.Limit != 0 || o.KeysOnly || o.CountOnly) && op.Type != messages.OpRange {
		return op, errors.New("limit, keys_only and count_only are for range")
	}
	if o.Limit < 0 || o.Limit > store.MaxRangeLimit {
		return op, fmt.Errorf("limit must be from 1 to %d", store.MaxRangeLimit)
	}
	start := key
	switch {
	case o.Prefix:
		end = prefixEnd(key)
	case hasEnd && end == "":
		end = "\x00"
	}
	if (op.Type == messages.OpGet || op.Type == messages.OpPut) && ranged {
		return op, fmt.Errorf("%s takes one key: use range or delete for a range", o.Op)
	}
	if err := checkOpKeys(start, end, ranged); err != nil {
		return op, err
	}
	switch op.Type {
	case messages.OpGet:
		op.Key = key
	case messages.OpPut:
		op.Key, op.Value = key, value
		if o.Lease != nil {
			op.Lease = int64(*o.Lease)
		}
	case messages.OpDelete:
		op.Key, op.End = start, end
	case messages.OpRange:
		if !ranged {
			end = ""
		}
		op.Range = messages.Range{Start: start, End: end, Limit: o.Limit, KeysOnly: o.KeysOnly, CountOnly: o.CountOnly}
	}
	return op, nil
}

// checkOpKeys refuses the keys of an operation as the kv actor would, so
// that nothing it would refuse is sent: one key must be a key
// (messages.CheckKey); a range may start at "" only when it reaches every
// key, and its bounds are no longer than a key.
func checkOpKeys(start, end string, ranged bool) error {
	if !ranged {
		return messages.CheckKey(start)
	}
	if start == "" && end != "\x00" {
		return fmt.Errorf("%w: a range with no start key must reach every key (end \"\", or prefix with no key)", messages.ErrEmptyKey)
	}
	if err := checkBound("key", start); err != nil {
		return err
	}
	return checkBound("end", end)
}

// txnKey reads a key (or end) given as text or as base64.
func (h *handler) txnKey(name string, text, b64 *string) (string, error) {
	v, err := bytesField(name, text, b64)
	if err != nil || v == nil {
		return "", err
	}
	return string(v), nil
}

// bytesField reads a field given as text or as base64 (name_b64), nil when
// neither is given.
func bytesField(name string, text, b64 *string) ([]byte, error) {
	switch {
	case text != nil && b64 != nil:
		return nil, fmt.Errorf("give %s or %s_b64, not both", name, name)
	case text != nil:
		return []byte(*text), nil
	case b64 != nil:
		v, err := base64.StdEncoding.DecodeString(*b64)
		if err != nil {
			return nil, fmt.Errorf("%s_b64: %w", name, err)
		}
		return v, nil
	}
	return nil, nil
}
