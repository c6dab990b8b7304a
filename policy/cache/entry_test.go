package cache_test

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/aigw/aigw/policy/cache"
	"github.com/aigw/aigw/providers/llm"
)

func entries() map[string]cache.Entry {
	return map[string]cache.Entry{
		"from JSON": sampleEntry("Sunny"),
		"from a stream": {
			Body:         []byte(`{"id":"x"}`),
			Deltas:       []string{"", "Sun", "ny", ""},
			FinishReason: llm.FinishLength,
			Usage:        llm.Usage{PromptTokens: 1 << 40, CompletionTokens: 7, TotalTokens: 1<<40 + 7, CachedTokens: 3, CacheWriteTokens: 2, ReasoningTokens: 1, Estimated: true},
			Created:      time.Unix(1_750_000_000, 123456789),
		},
		"empty stream": {Deltas: []string{}},
		"zero":         {},
		"negative":     {Usage: llm.Usage{PromptTokens: -1}, Created: time.Unix(-5, 0)},
	}
}

func TestEntryBinaryRoundTrip(t *testing.T) {
	for name, e := range entries() {
		b, err := e.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != e.EncodedSize() {
			t.Errorf("%s: EncodedSize %d, encoding has %d bytes", name, e.EncodedSize(), len(b))
		}
		var got cache.Entry
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !got.Created.Equal(e.Created) {
			t.Errorf("%s: Created %v, want %v", name, got.Created, e.Created)
		}
		got.Created, e.Created = time.Time{}, time.Time{}
		if len(e.Body) == 0 {
			e.Body = nil
		}
		if !reflect.DeepEqual(got, e) {
			t.Errorf("%s: round trip\n got %#v\nwant %#v", name, got, e)
		}
		// UnmarshalBinary copies: reusing the buffer leaves the entry intact.
		for i := range b {
			b[i] = 0xff
		}
		if len(e.Body) > 0 && string(got.Body) != string(entries()[name].Body) {
			t.Errorf("%s: Body aliases the input", name)
		}
	}
}

func TestEntryRejectsCorruptEncodings(t *testing.T) {
	e := entries()["from a stream"]
	b, _ := e.MarshalBinary()
	for n := range len(b) {
		var got cache.Entry
		if err := got.UnmarshalBinary(b[:n]); err == nil {
			t.Errorf("truncated to %d of %d bytes: no error", n, len(b))
		}
	}
	var got cache.Entry
	if err := got.UnmarshalBinary(append(b, 0)); err == nil {
		t.Error("trailing byte: no error")
	}
	bad := append([]byte(nil), b...)
	bad[0] = 99
	if err := got.UnmarshalBinary(bad); err == nil {
		t.Error("unknown version: no error")
	}
	// Random bytes never panic or allocate without bound.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		junk := make([]byte, rng.IntN(40))
		for i := range junk {
			junk[i] = byte(rng.Uint32())
		}
		if rng.IntN(2) == 0 && len(junk) > 0 {
			junk[0] = 1
		}
		_ = got.UnmarshalBinary(junk)
	}
}

func TestEntryChunks(t *testing.T) {
	js := sampleEntry("Sunny")
	if got := js.Chunks(); !reflect.DeepEqual(got, []string{"Sunny"}) {
		t.Errorf("JSON entry: Chunks() = %q", got)
	}
	if got := js.Content(); got != "Sunny" {
		t.Errorf("JSON entry: Content() = %q", got)
	}
	st := cache.Entry{Deltas: []string{"Sun", "ny"}, Body: []byte(`not json`)}
	if got := st.Chunks(); !reflect.DeepEqual(got, []string{"Sun", "ny"}) {
		t.Errorf("stream entry: Chunks() = %q", got)
	}
	if got := st.Content(); got != "Sunny" {
		t.Errorf("stream entry: Content() = %q", got)
	}
	toolOnly := cache.Entry{Body: []byte(`{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[]}}]}`)}
	for name, e := range map[string]cache.Entry{"null content": toolOnly, "no body": {}, "bad body": {Body: []byte(`{`)}, "no choices": {Body: []byte(`{"choices":[]}`)}} {
		if got := e.Chunks(); got != nil {
			t.Errorf("%s: Chunks() = %q, want nil", name, got)
		}
	}
	escaped := cache.Entry{Body: []byte(`{"choices":[{"message":{"content":"a\nb\u00e9"}}]}`)}
	if got := escaped.Chunks(); !reflect.DeepEqual(got, []string{"a\nbé"}) {
		t.Errorf("escaped content: Chunks() = %q", got)
	}
}
