package providertest

import (
	"strings"
	"testing"

	"github.com/aigw/aigw/providers/llm"
)

func TestJSONDiff(t *testing.T) {
	cases := []struct {
		want, got, diff string
	}{
		{`{"a":1,"b":[1,2]}`, `{"b":[1,2],"a":1}`, ""},
		{`{"a":1.0}`, `{"a":1}`, ""},
		{`{"a":1}`, `{"a":2}`, "$.a: want 1, got 2"},
		{`{"a":{"b":[1,{"c":"x"}]}}`, `{"a":{"b":[1,{"c":"y"}]}}`, `$.a.b[1].c: want "x", got "y"`},
		{`{"a":1}`, `{"a":1,"z":null}`, "$.z: unexpected null"},
		{`{"a":1,"z":null}`, `{"a":1}`, "$.z: missing"},
		{`[1,2]`, `[1]`, "$: want 2 elements, got 1"},
		{`{}`, `[]`, "$: want an object"},
		{`{}`, `{} {}`, "got is not JSON"},
	}
	for _, c := range cases {
		d := JSONDiff([]byte(c.want), []byte(c.got))
		if (c.diff == "") != (d == "") || !strings.HasPrefix(d, c.diff) {
			t.Errorf("JSONDiff(%s, %s) = %q, want %q", c.want, c.got, d, c.diff)
		}
	}
}

func TestDumps(t *testing.T) {
	if DumpError(nil) != nil {
		t.Error("DumpError(nil)")
	}
	e := DumpError(&llm.Error{Kind: llm.KindRateLimit, Status: 429, Retryable: true, Msg: "m"})
	if e.Kind != "rate_limit" || e.Status != 429 || !e.Retryable {
		t.Errorf("DumpError: %+v", e)
	}
	if DumpError(errString("x")).Kind != "NOT llm.Error" {
		t.Error("a foreign error must be flagged")
	}
	u := DumpUsage(llm.Usage{PromptTokens: 3, CachedTokens: 2, CacheWriteTokens: 1})
	if u.CachedTokens != 2 || u.CacheWriteTokens != 1 {
		t.Errorf("DumpUsage: %+v", u)
	}
	m := DumpMessage(&llm.Message{Role: "user", Parts: []llm.Part{{Type: "file", Raw: []byte(`{"type":"file"}`)}}, HasContent: true})
	if len(m.Parts) != 1 || string(m.Parts[0].Raw) != `{"type":"file"}` || !m.HasContent {
		t.Errorf("DumpMessage: %+v", m)
	}
}

type errString string

func (e errString) Error() string { return string(e) }
