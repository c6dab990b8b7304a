package anthropic_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	sdk "github.com/anthropics/anthropic-sdk-go"

	"github.com/aigw/aigw/providers/providertest"
)

// TestUpstreamBodiesMatchSDKSchema checks every golden upstream body against
// the official SDK's request type: unmarshalling into MessageNewParams and
// marshalling again must lose nothing, so no field is misspelled or out of
// place (the SDK drops what it does not know). The SDK writes string
// content as one text block, so both sides are normalised that way.
func TestUpstreamBodiesMatchSDKSchema(t *testing.T) {
	files, err := filepath.Glob("testdata/requests/*.upstream.json")
	more, err2 := filepath.Glob("testdata/native/requests/*.roundtrip.json")
	files = append(files, more...)
	if err != nil || err2 != nil || len(files) == 0 || len(more) == 0 {
		t.Fatalf("no upstream goldens: %v %v", err, err2)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var p sdk.MessageNewParams
		if err := json.Unmarshal(b, &p); err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		out, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if d := providertest.JSONDiff(normaliseContent(t, b), normaliseContent(t, out)); d != "" {
			t.Errorf("%s: the SDK reads the body differently: %s", f, d)
		}
	}
}

// normaliseContent rewrites string system, message and tool_result content
// as a single text block, and drops stream.
func normaliseContent(t *testing.T, body []byte) []byte {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	asBlocks := func(c any) any {
		if s, ok := c.(string); ok {
			return []any{map[string]any{"type": "text", "text": s}}
		}
		return c
	}
	delete(v, "stream") // the SDK sets it per call, not as a parameter
	if s, ok := v["system"]; ok {
		v["system"] = asBlocks(s)
	}
	msgs, _ := v["messages"].([]any)
	for _, m := range msgs {
		mm := m.(map[string]any)
		mm["content"] = asBlocks(mm["content"])
		blocks, _ := mm["content"].([]any)
		for _, b := range blocks {
			bb := b.(map[string]any)
			if c, ok := bb["content"]; ok && bb["type"] == "tool_result" {
				bb["content"] = asBlocks(c)
			}
		}
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
