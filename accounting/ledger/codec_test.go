package ledger

import (
	"encoding/hex"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// fullRecord returns a normalised record with every field set to a value
// no other field shares, so a field the binary form forgot or swapped
// shows up as a difference. It fills the fields by reflection: a field
// added to Record later is covered without editing this test.
func fullRecord(t testing.TB) Record {
	t.Helper()
	var r Record
	v := reflect.ValueOf(&r).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		switch {
		case f.Type() == reflect.TypeFor[time.Time]():
			f.Set(reflect.ValueOf(time.Date(2027, 6, 12, 14, 30, 5, 123456000, time.UTC)))
		case f.Kind() == reflect.String:
			f.SetString(v.Type().Field(i).Name + "-é")
		case f.Kind() == reflect.Bool:
			f.SetBool(true)
		case f.CanInt():
			f.SetInt(int64(1000*(i+1) + i)) // durations too: whole microseconds
		default:
			t.Fatalf("field %s of kind %s: teach fullRecord and the binary form about it", v.Type().Field(i).Name, f.Kind())
		}
	}
	return r
}

func TestRecordBinaryRoundTrip(t *testing.T) {
	full := fullRecord(t)
	for name, r := range map[string]Record{"every field": full, "zero": {RequestID: "z"}, "bools off": func() Record {
		c := full
		c.Stream, c.Priced, c.WeddingRelated = false, false, false
		c.TokensSaved, c.CostSavedUSDMicros = -1, -5 // negative values survive (normalize forbids some, not the form)
		return c
	}()} {
		got, err := decodeRecord(appendRecord(nil, &r))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := r
		want.Time = want.Time.UTC()
		if r.Time.IsZero() {
			want.Time = time.UnixMicro(time.Time{}.UnixMicro()).UTC()
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, want)
		}
	}
}

// TestRecordDecodesJSON: segments written before the binary form hold JSON
// payloads; they still decode to the same record.
func TestRecordDecodesJSON(t *testing.T) {
	r := fullRecord(t)
	b, err := json.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Errorf("got %+v\nwant %+v", got, r)
	}
}

// TestRecordDecodeRejectsDamage: every cut of a binary payload, trailing
// bytes and an unknown form byte are errors, not records.
func TestRecordDecodeRejectsDamage(t *testing.T) {
	r := fullRecord(t)
	p := appendRecord(nil, &r)
	for n := 0; n < len(p); n++ {
		if _, err := decodeRecord(p[:n]); err == nil {
			t.Fatalf("payload cut to %d of %d bytes decoded", n, len(p))
		}
	}
	if _, err := decodeRecord(append(p[:len(p):len(p)], 0)); err == nil {
		t.Error("trailing byte accepted")
	}
	if _, err := decodeRecord([]byte{0x7f, 1, 2}); err == nil {
		t.Error("unknown form accepted")
	}
}

func TestRecordFrameReads(t *testing.T) {
	r := fullRecord(t)
	frame := appendRecordFrame([]byte("prefix"), &r)
	if string(frame[:6]) != "prefix" {
		t.Fatal("appendRecordFrame overwrote dst")
	}
	want := appendFrame(nil, appendRecord(nil, &r))
	if string(frame[6:]) != string(want) {
		t.Error("in-place frame differs from appendFrame of the payload")
	}
}

// FuzzDecodeRecord: no input panics; whatever decodes re-encodes to a
// payload that decodes to the same record.
func FuzzDecodeRecord(f *testing.F) {
	r := fullRecord(f)
	f.Add(appendRecord(nil, &r))
	f.Add(appendRecord(nil, &Record{RequestID: "x"}))
	f.Add([]byte(`{"request_id":"j","prompt_tokens":3}`))
	f.Add([]byte{recordV1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, p []byte) {
		got, err := decodeRecord(p)
		if err != nil {
			return
		}
		again, err := decodeRecord(appendRecord(nil, &got))
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		got.Time = time.UnixMicro(got.Time.UnixMicro()).UTC() // the binary form keeps microseconds
		if !reflect.DeepEqual(got, again) {
			t.Fatalf("round trip changed the record:\n%+v\n%+v", got, again)
		}
	})
}

// TestRecordDecodesV1: spill segments written before ClientRequestID
// existed hold recordV1 payloads; one written by that version's encoder
// (the bytes below) still decodes, with no client id.
func TestRecordDecodesV1(t *testing.T) {
	p, err := hex.DecodeString("01057265715f310464656d6f026b310010636861745f636f6d706c6574696f6e730b6770742d346f2d6d696e69066f70656e61690b6770742d346f2d6d696e6903555344026f6b0000000000a0f2bc88a482b10600c08db701183c0000005400900328280005")
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeRecord(p)
	if err != nil {
		t.Fatal(err)
	}
	want := Record{RequestID: "req_1", Time: time.Date(2026, 12, 7, 11, 0, 0, 250000000, time.UTC), Org: "demo", KeyID: "k1",
		Endpoint: "chat_completions", ModelAlias: "gpt-4o-mini", Provider: "openai", UpstreamModel: "gpt-4o-mini",
		DisplayCurrency: "USD", Outcome: "ok", Stream: true, PromptTokens: 12, CompletionTokens: 30, TotalTokens: 42,
		TotalTime: 1500 * time.Microsecond, CostUSDMicros: 20, CostDisplayMicros: 20, Priced: true, Status: 200}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if p2 := appendRecord(nil, &got); p2[0] != recordV2 {
		t.Errorf("re-encoded as form 0x%02x, want recordV2", p2[0])
	}
}
