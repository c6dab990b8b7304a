package cache

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aigw/aigw/providers/llm"
)

func TestCanonicalJSON(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{"b":1,"a":2}`, `{"a":2,"b":1}`},
		{" { \"a\" : [ 3 , 2 , 1 ] , \"b\" : { \"d\" : null , \"c\" : true } } ", `{"a":[3,2,1],"b":{"c":true,"d":null}}`},
		{`{}`, `{}`},
		{`[ ]`, `[]`},
		{`[{"b":{},"a":[]}]`, `[{"a":[],"b":{}}]`},
		{`"\u0041\n\/"`, `"A\n/"`},
		{`"é"`, `"é"`},
		{`"\u00e9"`, `"é"`},
		{"\"\u2028\"", `"\u2028"`},
		{`{"\u0062":1,"a":2}`, `{"a":2,"b":1}`},
		{`1`, `1`},
		{`-0`, `0`},
		{`1.0`, `1`},
		{`1e0`, `1`},
		{`1E+2`, `100`},
		{`-0.0`, `0`},
		{`0.5`, `0.5`},
		{`5e-1`, `0.5`},
		{`1.5e300`, `1.5e+300`},
		{`12345678901234567890123`, `12345678901234567890123`},
		{`1e400`, `1e400`},
		{`{"a":1,"a":2}`, `{"a":1,"a":2}`},
		{`false`, `false`},
	}
	var c canonJSON
	for _, tc := range cases {
		got, ok := c.canonical([]byte(tc.in))
		if !ok || string(got) != tc.want {
			t.Errorf("canonical(%s) = %s, %v; want %s", tc.in, got, ok, tc.want)
		}
	}
}

func TestCanonicalJSONRejectsInvalid(t *testing.T) {
	deep := strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1)
	for _, in := range []string{``, ` `, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `[1,]`, `[1 2]`, `{a:1}`, `01`, `1.`, `1e`, `-`, `.5`,
		`"abc`, "\"a\x01\"", `tru`, `nul`, `1 2`, `{"a":1}x`, `"\x"`, deep} {
		if got, ok := new(canonJSON).canonical([]byte(in)); ok {
			t.Errorf("canonical(%q) = %s, true; want false", in, got)
		}
	}
}

// TestKeyRawJSONFallback: a raw value that is not JSON is hashed verbatim:
// its bytes count, and it does not collide with a valid value.
func TestKeyRawJSONFallback(t *testing.T) {
	k := func(raw string) Key {
		return KeyOf("o", "m", &llm.Request{ToolChoice: json.RawMessage(raw)})
	}
	if k(`{"a":`) == k(`{"a": `) {
		t.Error("two invalid values share a key")
	}
	if k(`{"a":1`) == k(`{"a":1}`) {
		t.Error("an invalid value shares a valid one's key")
	}
	if k(` {"a":1} `) != k(`{"a":1}`) {
		t.Error("white space around a valid value changes the key")
	}
}

func TestAbsentJSON(t *testing.T) {
	for in, want := range map[string]bool{``: true, ` `: true, `null`: true, ` null `: true, `nullx`: false, `0`: false, `""`: false} {
		if got := isAbsentJSON([]byte(in)); got != want {
			t.Errorf("isAbsentJSON(%q) = %v", in, got)
		}
	}
}
