package ledger

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aigw/aigw/accounting"
	"github.com/aigw/aigw/internal/binread"
)

// A spill frame's payload is one Record in one of two forms, told apart by
// its first byte:
//
//   - '{': JSON with Record's field names, as segments written before the
//     binary form hold; still read, never written.
//   - recordV2: the binary form appendRecord writes. After the version byte,
//     in this order: the sixteen strings (each a uvarint length and its
//     bytes), the time as a varint of Unix microseconds, the two durations
//     as varints of nanoseconds, the eleven counts and amounts as varints,
//     and the five booleans as one uvarint of flags.
//   - recordV1: recordV2 without its last string (ClientRequestID), as
//     segments written before that field hold; still read, never written.
//
// The binary form exists because encoding the record was the largest cost
// of Append after the write itself: json.Marshal of a Record took several
// microseconds on the answer path.
const (
	recordV1 byte = 0x01
	recordV2 byte = 0x02
)

// v1Strings is how many of stringFields' strings recordV1 holds.
const v1Strings = 15

// Flag bits of the binary form.
const (
	flagStream = 1 << iota
	flagUsageEstimated
	flagPriced
	flagCacheHit
	flagWeddingRelated
)

// stringFields returns pointers to r's strings in the binary form's order.
// New strings go at the end, with a new form version: the older forms hold
// a prefix of this list.
func (r *Record) stringFields() [16]*string {
	return [16]*string{
		&r.RequestID, &r.Org, &r.KeyID, &r.User, &r.Endpoint,
		&r.ModelAlias, &r.Provider, &r.UpstreamModel, &r.DisplayCurrency, &r.Outcome,
		&r.ErrorType, &r.ErrorMessage, &r.UseCase, &r.VendorType, &r.WeddingDate,
		&r.ClientRequestID,
	}
}

// ints returns r's counts and amounts in the binary form's order;
// setInts is its inverse.
func (r *Record) ints() [11]int64 {
	return [11]int64{
		int64(r.PromptTokens), int64(r.CompletionTokens), int64(r.CachedTokens),
		int64(r.CacheWriteTokens), int64(r.ReasoningTokens), int64(r.TotalTokens),
		int64(r.TokensSaved), int64(r.Status),
		int64(r.CostUSDMicros), r.CostDisplayMicros, int64(r.CostSavedUSDMicros),
	}
}

func (r *Record) setInts(v [11]int64) {
	r.PromptTokens, r.CompletionTokens, r.CachedTokens = int(v[0]), int(v[1]), int(v[2])
	r.CacheWriteTokens, r.ReasoningTokens, r.TotalTokens = int(v[3]), int(v[4]), int(v[5])
	r.TokensSaved, r.Status = int(v[6]), int(v[7])
	r.CostUSDMicros, r.CostDisplayMicros, r.CostSavedUSDMicros = accounting.MicroUSD(v[8]), v[9], accounting.MicroUSD(v[10])
}

func (r *Record) flags() uint64 {
	var f uint64
	for _, b := range [...]struct {
		on  bool
		bit uint64
	}{{r.Stream, flagStream}, {r.UsageEstimated, flagUsageEstimated}, {r.Priced, flagPriced},
		{r.CacheHit, flagCacheHit}, {r.WeddingRelated, flagWeddingRelated}} {
		if b.on {
			f |= b.bit
		}
	}
	return f
}

// appendRecord appends r's binary form to dst.
func appendRecord(dst []byte, r *Record) []byte {
	dst = append(dst, recordV2)
	for _, s := range r.stringFields() {
		dst = binary.AppendUvarint(dst, uint64(len(*s)))
		dst = append(dst, *s...)
	}
	dst = binary.AppendVarint(dst, r.Time.UnixMicro())
	dst = binary.AppendVarint(dst, int64(r.TimeToFirstToken))
	dst = binary.AppendVarint(dst, int64(r.TotalTime))
	for _, n := range r.ints() {
		dst = binary.AppendVarint(dst, n)
	}
	return binary.AppendUvarint(dst, r.flags())
}

// errShortRecord is returned for a binary payload that ends early.
var errShortRecord = errors.New("record payload ends early")

// decodeRecord decodes a payload in either form. It never panics, whatever
// the bytes.
func decodeRecord(p []byte) (Record, error) {
	var r Record
	if len(p) == 0 {
		return r, errShortRecord
	}
	all := r.stringFields()
	strs := all[:]
	switch p[0] {
	case '{':
		err := json.Unmarshal(p, &r)
		return r, err
	case recordV1:
		strs = all[:v1Strings]
	case recordV2:
	default:
		return r, fmt.Errorf("unknown record form 0x%02x", p[0])
	}
	d := binread.New(p[1:])
	for _, s := range strs {
		*s = string(d.Bytes())
	}
	if us := d.Varint(); d.OK() {
		r.Time = time.UnixMicro(us).UTC()
	}
	r.TimeToFirstToken = time.Duration(d.Varint())
	r.TotalTime = time.Duration(d.Varint())
	var ints [11]int64
	for i := range ints {
		ints[i] = d.Varint()
	}
	r.setInts(ints)
	f := d.Uvarint()
	r.Stream, r.UsageEstimated, r.Priced = f&flagStream != 0, f&flagUsageEstimated != 0, f&flagPriced != 0
	r.CacheHit, r.WeddingRelated = f&flagCacheHit != 0, f&flagWeddingRelated != 0
	if !d.OK() {
		return Record{}, errShortRecord
	}
	if d.Len() != 0 {
		return Record{}, fmt.Errorf("%d bytes after the record", d.Len())
	}
	return r, nil
}
