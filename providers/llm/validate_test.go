package llm

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestRequestValidate(t *testing.T) {
	const ok = `"model":"m","messages":[{"role":"user","content":"hi"}]`
	cases := []struct {
		body, param, code string
	}{
		{`{` + ok + `}`, "", ""},
		{`{` + ok + `,"stream":true,"stream_options":{"include_usage":true},"n":128,"max_tokens":1,"temperature":0,"top_p":1,"stop":["a","b","c","d"]}`, "", ""},
		{`{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c","content":"x"}]}`, "", ""},
		{`{"model":"m","messages":[{"role":"assistant","refusal":"no"},{"role":"developer","content":[{"type":"text","text":"x"}]}]}`, "", ""},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"get_weather-2"}}]}`, "", ""},

		{`{"messages":[{"role":"user","content":"hi"}]}`, "model", "missing_required_parameter"},
		{`{"model":"m"}`, "messages", "missing_required_parameter"},
		{`{"model":"m","messages":[]}`, "messages", "empty_array"},
		{`{"model":"m","messages":[{"content":"x"}]}`, "messages[0].role", "missing_required_parameter"},
		{`{"model":"m","messages":[{"role":"user","content":"x"},{"role":"robot","content":"x"}]}`, "messages[1].role", "invalid_value"},
		{`{"model":"m","messages":[{"role":"user"}]}`, "messages[0].content", "missing_required_parameter"},
		{`{"model":"m","messages":[{"role":"user","content":null}]}`, "messages[0].content", "missing_required_parameter"},
		{`{"model":"m","messages":[{"role":"assistant","content":null}]}`, "messages[0].content", "missing_required_parameter"},
		{`{"model":"m","messages":[{"role":"tool","content":"x"}]}`, "messages[0].tool_call_id", "missing_required_parameter"},
		{`{"model":"m","messages":[{"role":"user","content":[{"text":"x"}]}]}`, "messages[0].content[0].type", "missing_required_parameter"},
		{`{"model":"m","messages":[{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f"}}]}]}`, "messages[0].tool_calls[0].id", "missing_required_parameter"},
		{`{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","function":{}}]}]}`, "messages[0].tool_calls[0].function.name", "missing_required_parameter"},
		{`{` + ok + `,"n":0}`, "n", "integer_below_min_value"},
		{`{` + ok + `,"n":129}`, "n", "integer_above_max_value"},
		{`{` + ok + `,"max_tokens":0}`, "max_tokens", "integer_below_min_value"},
		{`{` + ok + `,"max_completion_tokens":-1}`, "max_completion_tokens", "integer_below_min_value"},
		{`{` + ok + `,"temperature":2.5}`, "temperature", "decimal_above_max_value"},
		{`{` + ok + `,"temperature":-0.1}`, "temperature", "decimal_below_min_value"},
		{`{` + ok + `,"top_p":1.01}`, "top_p", "decimal_above_max_value"},
		{`{` + ok + `,"stop":["a","b","c","d","e"]}`, "stop", "array_above_max_length"},
		{`{` + ok + `,"stream_options":{"include_usage":true}}`, "stream_options", "invalid_value"},
		{`{` + ok + `,"tools":[{"type":"function","function":{"name":"bad name"}}]}`, "tools[0].function.name", "invalid_value"},
		{`{` + ok + `,"tools":[{"type":"function","function":{"name":"` + strings.Repeat("a", 65) + `"}}]}`, "tools[0].function.name", "invalid_value"},
		{`{` + ok + `,"tools":[{"type":"function","function":{}}]}`, "tools[0].function.name", "missing_required_parameter"},
	}
	for _, c := range cases {
		var r Request
		if err := r.UnmarshalJSON([]byte(c.body)); err != nil {
			t.Fatalf("%s: %v", c.body, err)
		}
		err := r.Validate()
		if c.param == "" && c.code == "" {
			if err != nil {
				t.Errorf("%s: unexpected %v", c.body, err)
			}
			continue
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%s: err = %v, want *Error", c.body, err)
			continue
		}
		if e.Kind != KindInvalidRequest || e.Param != c.param || e.Code != c.code || e.Msg == "" {
			t.Errorf("%s: got kind=%v param=%q code=%q msg=%q; want param=%q code=%q", c.body, e.Kind, e.Param, e.Code, e.Msg, c.param, c.code)
		}
	}
}

func TestValidateMessages(t *testing.T) {
	var r Request
	_ = r.UnmarshalJSON([]byte(`{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":3,"max_tokens":0}`))
	err := r.Validate()
	// The first violation in documented order is max_tokens.
	if got := err.Error(); !strings.Contains(got, "Invalid 'max_tokens': integer below minimum value. Expected a value >= 1, but got 0 instead.") {
		t.Fatalf("message: %s", got)
	}
	r.MaxTokens = nil
	if got := r.Validate().(*Error).Msg; got != "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 3 instead." {
		t.Fatalf("message: %s", got)
	}
}

func TestEmbeddingRequestValidate(t *testing.T) {
	cases := []struct {
		body, param string
	}{
		{`{"model":"m","input":"hello"}`, ""},
		{`{"model":"m","input":["a","b"],"encoding_format":"base64","dimensions":8}`, ""},
		{`{"model":"m","input":[1,2,3],"encoding_format":"float"}`, ""},
		{`{"model":"m","input":[[1,2],[3]]}`, ""},
		{`{"input":"x"}`, "model"},
		{`{"model":"m"}`, "input"},
		{`{"model":"m","input":null}`, "input"},
		{`{"model":"m","input":""}`, "input"},
		{`{"model":"m","input":[]}`, "input"},
		{`{"model":"m","input":["a",""]}`, "input"},
		{`{"model":"m","input":["a",1]}`, "input"},
		{`{"model":"m","input":[[1],[]]}`, "input"},
		{`{"model":"m","input":[1.5]}`, "input"},
		{`{"model":"m","input":{"a":1}}`, "input"},
		{`{"model":"m","input":[{"a":1}]}`, "input"},
		{`{"model":"m","input":"x","encoding_format":"int8"}`, "encoding_format"},
		{`{"model":"m","input":"x","dimensions":0}`, "dimensions"},
	}
	for _, c := range cases {
		var r EmbeddingRequest
		if err := r.UnmarshalJSON([]byte(c.body)); err != nil {
			t.Fatalf("%s: %v", c.body, err)
		}
		err := r.Validate()
		if c.param == "" {
			if err != nil {
				t.Errorf("%s: unexpected %v", c.body, err)
			}
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.Kind != KindInvalidRequest || e.Param != c.param {
			t.Errorf("%s: err = %v, want param %q", c.body, err, c.param)
		}
	}
	many := make([]string, maxEmbeddingInputs+1)
	for i := range many {
		many[i] = "x"
	}
	raw, _ := json.Marshal(many)
	r := EmbeddingRequest{Model: "m", Input: raw}
	if err := r.Validate(); err == nil || err.(*Error).Code != "array_above_max_length" {
		t.Fatalf("too many inputs: %v", err)
	}
}

func TestEmbeddingInputCount(t *testing.T) {
	for in, want := range map[string]int{`"x"`: 1, `["a","b","c"]`: 3, `[1,2,3]`: 1, `[[1],[2]]`: 2, `null`: 0, `{}`: 0, ``: 0, `[]`: 0} {
		r := EmbeddingRequest{Input: json.RawMessage(in)}
		if got := r.InputCount(); got != want {
			t.Errorf("%s: %d, want %d", in, got, want)
		}
	}
}
