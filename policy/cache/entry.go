package cache

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/aigw/aigw/internal/binread"
	"github.com/aigw/aigw/providers/llm"
)

// Entry is one cached answer.
//
// An Entry the cache returns is shared with every other hit on the same
// key, in this goroutine and others: treat it as immutable (never write to
// Body, Deltas or their elements). An Entry handed to Set or Lead.Fill
// becomes the cache's: the caller must not modify it afterwards either.
//
// The cache stores what it is given. The proxy should store only answers it
// can replay in both formats: one choice, finished (FinishReason set), and,
// for an entry filled from a stream, content only (Deltas cannot express
// tool calls, refusals or logprobs; store those from JSON, or not at all).
type Entry struct {
	// Body is the OpenAI chat.completion JSON answer; it may be nil for an
	// entry filled from a stream (the proxy then builds a JSON answer from
	// Content, FinishReason and Usage). The proxy rewrites id and created
	// when it serves a hit, if it wants them fresh.
	Body []byte
	// Deltas is the content of each streamed chunk, in order, when the
	// entry was filled from a stream; nil when it was filled from JSON.
	Deltas []string
	// FinishReason is the choice's finish reason (llm.FinishStop, ...).
	FinishReason string
	// Usage is what the upstream reported for the answer. A hit costs no
	// upstream tokens; the proxy decides what it bills and reports.
	Usage llm.Usage
	// Created is when the answer was produced.
	Created time.Time
}

// Chunks returns the answer's content as a stream of chunks: Deltas (as
// is, possibly empty) when the entry was filled from a stream; otherwise
// the first choice's message content parsed from Body, as one chunk, or
// nil when there is none (empty or null content, no choices, a Body that
// does not parse). The slice may be e.Deltas itself: do not modify it.
func (e Entry) Chunks() []string {
	if e.Deltas != nil {
		return e.Deltas
	}
	if c := bodyContent(e.Body); c != "" {
		return []string{c}
	}
	return nil
}

// Content returns the answer's whole content: the concatenated Deltas
// when the entry was filled from a stream, otherwise the first choice's
// message content from Body ("" when none).
func (e Entry) Content() string {
	if e.Deltas != nil {
		return strings.Join(e.Deltas, "")
	}
	return bodyContent(e.Body)
}

// bodyContent returns choices[0].message.content of a chat.completion.
func bodyContent(body []byte) string {
	if len(body) == 0 {
		return ""
	}
	var v struct {
		Choices []struct {
			Message struct {
				Content *string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	if json.Unmarshal(body, &v) != nil || len(v.Choices) == 0 || v.Choices[0].Message.Content == nil {
		return ""
	}
	return *v.Choices[0].Message.Content
}

// entryVersion is the first byte of the binary encoding.
const entryVersion = 1

// errCorrupt is returned for an encoding that does not decode.
var errCorrupt = errors.New("cache: corrupt entry encoding")

// EncodedSize returns len of e's binary encoding, without encoding it; the
// in-process tier charges it as the entry's cost.
func (e *Entry) EncodedSize() int {
	n := 1 + varintLen(createdNanos(e.Created))
	u := &e.Usage
	for _, v := range [...]int{u.PromptTokens, u.CompletionTokens, u.TotalTokens, u.CachedTokens, u.CacheWriteTokens, u.ReasoningTokens} {
		n += varintLen(int64(v))
	}
	n++ // flags
	n += uvarintLen(uint64(len(e.FinishReason))) + len(e.FinishReason)
	n += uvarintLen(uint64(len(e.Body))) + len(e.Body)
	if e.Deltas == nil {
		return n + 1
	}
	n += uvarintLen(uint64(len(e.Deltas)) + 1)
	for _, d := range e.Deltas {
		n += uvarintLen(uint64(len(d))) + len(d)
	}
	return n
}

// AppendBinary appends e's compact binary encoding to dst (it implements
// encoding.BinaryAppender and never fails): a version byte, Created in
// Unix nanoseconds, the Usage figures and flag, then FinishReason, Body and
// Deltas, each length-prefixed (a nil Deltas stays nil).
func (e *Entry) AppendBinary(dst []byte) ([]byte, error) {
	dst = append(dst, entryVersion)
	dst = binary.AppendVarint(dst, createdNanos(e.Created))
	u := &e.Usage
	for _, v := range [...]int{u.PromptTokens, u.CompletionTokens, u.TotalTokens, u.CachedTokens, u.CacheWriteTokens, u.ReasoningTokens} {
		dst = binary.AppendVarint(dst, int64(v))
	}
	var flags byte
	if u.Estimated {
		flags |= 1
	}
	dst = append(dst, flags)
	dst = appendBytes(dst, e.FinishReason)
	dst = appendBytes(dst, e.Body)
	if e.Deltas == nil {
		return append(dst, 0), nil
	}
	dst = binary.AppendUvarint(dst, uint64(len(e.Deltas))+1)
	for _, d := range e.Deltas {
		dst = appendBytes(dst, d)
	}
	return dst, nil
}

// MarshalBinary implements encoding.BinaryMarshaler with AppendBinary.
func (e *Entry) MarshalBinary() ([]byte, error) {
	return e.AppendBinary(make([]byte, 0, e.EncodedSize()))
}

// UnmarshalBinary decodes what AppendBinary wrote, replacing all of *e. It
// copies what it keeps: data may be reused afterwards.
func (e *Entry) UnmarshalBinary(data []byte) error {
	var err error
	*e, err = decodeEntry(data, false)
	return err
}

// decodeEntry decodes an entry; with alias, Body shares data's memory
// (the caller gives data up).
func decodeEntry(data []byte, alias bool) (Entry, error) {
	var e Entry
	d := binread.New(data)
	if d.Byte() != entryVersion {
		return Entry{}, errCorrupt
	}
	if ns := d.Varint(); ns != 0 {
		e.Created = time.Unix(0, ns)
	}
	u := &e.Usage
	for _, p := range [...]*int{&u.PromptTokens, &u.CompletionTokens, &u.TotalTokens, &u.CachedTokens, &u.CacheWriteTokens, &u.ReasoningTokens} {
		*p = int(d.Varint())
	}
	flags := d.Byte()
	u.Estimated = flags&1 != 0
	e.FinishReason = string(d.Bytes())
	if body := d.Bytes(); len(body) > 0 {
		if alias {
			e.Body = body[:len(body):len(body)]
		} else {
			e.Body = append([]byte(nil), body...)
		}
	}
	if n := d.Uvarint(); n > 0 {
		n--
		if n > uint64(d.Len()) { // each delta takes at least one byte
			return Entry{}, errCorrupt
		}
		e.Deltas = make([]string, n)
		for i := range e.Deltas {
			e.Deltas[i] = string(d.Bytes())
		}
	}
	if !d.OK() || d.Len() != 0 || flags&^1 != 0 {
		return Entry{}, errCorrupt
	}
	return e, nil
}

func createdNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func appendBytes[S string | []byte](dst []byte, s S) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func varintLen(v int64) int {
	u := uint64(v) << 1
	if v < 0 {
		u = ^u
	}
	return uvarintLen(u)
}
