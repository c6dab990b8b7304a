package cache_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aigw/aigw/policy/cache"
	"github.com/aigw/aigw/providers/llm"
)

const baseBody = `{"model":"gpt-4o","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Weather in Paris?"}],"temperature":0,"max_tokens":100,"tools":[{"type":"function","function":{"name":"get_weather","description":"Current weather","parameters":{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["c","f"]}},"required":["city"]}}}],"tool_choice":"auto","response_format":{"type":"json_schema","json_schema":{"name":"w","schema":{"type":"object","properties":{"t":{"type":"number","minimum":1}}}}}}`

func baseKey(t *testing.T) cache.Key {
	return cache.KeyOf("org-a", "gpt-4o", parse(t, baseBody))
}

// TestKeySameForEquivalentRequests: bodies that differ only in what cannot
// change the answer get the base request's key.
func TestKeySameForEquivalentRequests(t *testing.T) {
	base := baseKey(t)
	cases := map[string]string{
		"field order":              `{"tool_choice":"auto","max_tokens":100,"temperature":0,"response_format":{"json_schema":{"schema":{"properties":{"t":{"minimum":1,"type":"number"}},"type":"object"},"name":"w"},"type":"json_schema"},"tools":[{"function":{"parameters":{"required":["city"],"properties":{"unit":{"enum":["c","f"],"type":"string"},"city":{"type":"string"}},"type":"object"},"description":"Current weather","name":"get_weather"},"type":"function"}],"messages":[{"content":"You are terse.","role":"system"},{"content":"Weather in Paris?","role":"user"}],"model":"gpt-4o"}`,
		"white space":              "{\n  \"model\" : \"gpt-4o\",\n  \"messages\" : [ {\"role\":\"system\", \"content\":\"You are terse.\"} ,\n {\"role\":\"user\",\"content\":\"Weather in Paris?\"} ],\n \"temperature\": 0, \"max_tokens\": 100,\n \"tools\": [ { \"type\": \"function\", \"function\": { \"name\": \"get_weather\", \"description\": \"Current weather\",\n \"parameters\": { \"type\" : \"object\" , \"properties\" : { \"city\" : { \"type\" : \"string\" } , \"unit\" : { \"type\" : \"string\" , \"enum\" : [ \"c\" , \"f\" ] } } , \"required\" : [ \"city\" ] } } } ],\n \"tool_choice\" : \"auto\" ,\n \"response_format\": {\"type\": \"json_schema\", \"json_schema\": {\"name\": \"w\", \"schema\": {\"type\": \"object\", \"properties\": {\"t\": {\"type\": \"number\", \"minimum\": 1}}}}}\n}\n",
		"tool parameter key order": replace(t, baseBody, `"properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["c","f"]}},"required":["city"]`, `"required":["city"],"properties":{"unit":{"enum":["c","f"],"type":"string"},"city":{"type":"string"}}`),
		"escapes and number forms": replace(t, replace(t, baseBody, `"city":{"type"`, `"\u0063ity":{"t\u0079pe"`), `"minimum":1}`, `"minimum":1.0e0}`),
		"stream":                   replace(t, baseBody, `"temperature":0`, `"stream":true,"temperature":0`),
		"stream with usage":        replace(t, baseBody, `"temperature":0`, `"stream":true,"stream_options":{"include_usage":true,"x":1},"temperature":0`),
		"user":                     replace(t, baseBody, `"temperature":0`, `"user":"alice","temperature":0`),
		"answer-neutral fields":    replace(t, baseBody, `"temperature":0`, `"metadata":{"a":"b"},"store":true,"service_tier":"auto","safety_identifier":"u1","prompt_cache_key":"k","prompt_cache_retention":"24h","temperature":0`),
		"n=1":                      replace(t, baseBody, `"temperature":0`, `"n":1,"temperature":0`),
		"empty stop":               replace(t, baseBody, `"temperature":0`, `"stop":[],"temperature":0`),
		"null parameters":          replace(t, baseBody, `"temperature":0`, `"presence_penalty":null,"logit_bias":null,"seed":null,"temperature":0`),
		"negative zero":            replace(t, baseBody, `"temperature":0`, `"temperature":-0.0`),
		"client's model field":     replace(t, baseBody, `"model":"gpt-4o"`, `"model":"GPT-4o-latest"`),
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			if got := cache.KeyOf("org-a", "gpt-4o", parse(t, body)); got != base {
				t.Errorf("key %s, want the base key %s", got, base)
			}
		})
	}
}

// TestKeyDiffersForEachParameter: changing any one thing that can change
// the answer changes the key, and no two such changes collide.
func TestKeyDiffersForEachParameter(t *testing.T) {
	base := baseKey(t)
	set := func(field string, v any) func(map[string]any) {
		return func(m map[string]any) { m[field] = v }
	}
	del := func(field string) func(map[string]any) {
		return func(m map[string]any) { delete(m, field) }
	}
	msg := func(i int, field string, v any) func(map[string]any) {
		return func(m map[string]any) { m["messages"].([]any)[i].(map[string]any)[field] = v }
	}
	fn := func(field string, v any) func(map[string]any) {
		return func(m map[string]any) {
			m["tools"].([]any)[0].(map[string]any)["function"].(map[string]any)[field] = v
		}
	}
	cases := map[string]func(map[string]any){
		"system message":   msg(0, "content", "You are verbose."),
		"user message":     msg(1, "content", "Weather in Rome?"),
		"role":             msg(0, "role", "developer"),
		"message name":     msg(1, "name", "bob"),
		"content as parts": msg(1, "content", []any{map[string]any{"type": "text", "text": "Weather in Paris?"}}),
		"image part":       msg(1, "content", []any{map[string]any{"type": "image_url", "image_url": map[string]any{"url": "https://x/a.png"}}}),
		"image detail":     msg(1, "content", []any{map[string]any{"type": "image_url", "image_url": map[string]any{"url": "https://x/a.png", "detail": "low"}}}),
		"audio part":       msg(1, "content", []any{map[string]any{"type": "input_audio", "input_audio": map[string]any{"data": "AAAA", "format": "wav"}}}),
		"extra message": func(m map[string]any) {
			m["messages"] = append(m["messages"].([]any), map[string]any{"role": "user", "content": "?"})
		},
		"message order":         func(m map[string]any) { ms := m["messages"].([]any); ms[0], ms[1] = ms[1], ms[0] },
		"assistant tool call":   func(m map[string]any) { m["messages"] = append(m["messages"].([]any), toolTurn(`{"city":"Paris"}`)) },
		"tool call arguments":   func(m map[string]any) { m["messages"] = append(m["messages"].([]any), toolTurn(`{"city":"Rome"}`)) },
		"no temperature":        del("temperature"),
		"temperature":           set("temperature", 0.2),
		"top_p":                 set("top_p", 1),
		"no max_tokens":         del("max_tokens"),
		"max_tokens":            set("max_tokens", 101),
		"max_completion_tokens": func(m map[string]any) { delete(m, "max_tokens"); m["max_completion_tokens"] = 100 },
		"stop":                  set("stop", []any{"\n"}),
		"stop string":           set("stop", "END"),
		"seed":                  set("seed", 42),
		"n":                     set("n", 2),
		"presence_penalty":      set("presence_penalty", 0.5),
		"frequency_penalty":     set("frequency_penalty", 0.5),
		"logit_bias":            set("logit_bias", map[string]any{"50256": -100}),
		"logprobs":              set("logprobs", true),
		"top_logprobs":          set("top_logprobs", 2),
		"reasoning_effort":      set("reasoning_effort", "low"),
		"verbosity":             set("verbosity", "low"),
		"parallel_tool_calls":   set("parallel_tool_calls", false),
		"unknown field":         set("x_vendor_knob", 1),
		"no tools":              del("tools"),
		"tool name":             fn("name", "get_forecast"),
		"tool description":      fn("description", "Weather now"),
		"tool strict":           fn("strict", true),
		"tool parameters":       fn("parameters", map[string]any{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}}),
		"tool enum order":       fn("parameters", map[string]any{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}, "unit": map[string]any{"type": "string", "enum": []any{"f", "c"}}}, "required": []any{"city"}}),
		"no tool_choice":        del("tool_choice"),
		"tool_choice":           set("tool_choice", "none"),
		"tool_choice function":  set("tool_choice", map[string]any{"type": "function", "function": map[string]any{"name": "get_weather"}}),
		"no response_format":    del("response_format"),
		"response_format":       set("response_format", map[string]any{"type": "json_object"}),
	}
	seen := map[cache.Key]string{base: "base"}
	for name, mod := range cases {
		var m map[string]any
		if err := json.Unmarshal([]byte(baseBody), &m); err != nil {
			t.Fatal(err)
		}
		mod(m)
		body, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		k := cache.KeyOf("org-a", "gpt-4o", parse(t, string(body)))
		if other, dup := seen[k]; dup {
			t.Errorf("%s: same key as %s", name, other)
		}
		seen[k] = name
	}
	r := parse(t, baseBody)
	if cache.KeyOf("org-a", "gpt-4o-mini", r) == base {
		t.Error("another model alias gets the same key")
	}
}

func toolTurn(args string) map[string]any {
	return map[string]any{"role": "assistant", "content": nil, "tool_calls": []any{map[string]any{
		"id": "call_1", "type": "function", "function": map[string]any{"name": "get_weather", "arguments": args}}}}
}

// TestKeyNamespacedByOrg: the same request from two orgs gets two keys, and
// the org and model strings cannot run into each other.
func TestKeyNamespacedByOrg(t *testing.T) {
	r := parse(t, baseBody)
	if cache.KeyOf("org-a", "gpt-4o", r) == cache.KeyOf("org-b", "gpt-4o", r) {
		t.Fatal("two orgs share a key")
	}
	if cache.KeyOf("a", "bc", r) == cache.KeyOf("ab", "c", r) {
		t.Fatal(`("a","bc") and ("ab","c") share a key`)
	}
	if cache.KeyOf("", "gpt-4o", r) == cache.KeyOf("org-a", "gpt-4o", r) {
		t.Fatal("an empty org shares a key")
	}
}

func TestKeyModelFallbackAndString(t *testing.T) {
	r := parse(t, baseBody)
	if cache.KeyOf("o", "", r) != cache.KeyOf("o", "gpt-4o", r) {
		t.Error(`model "" does not fall back to r.Model`)
	}
	k := cache.KeyOf("o", "", nil) // a nil request is an empty one
	if k != cache.KeyOf("o", "", &llm.Request{}) {
		t.Error("nil and empty requests differ")
	}
	if s := k.String(); len(s) != 64 || strings.Trim(s, "0123456789abcdef") != "" {
		t.Errorf("String() = %q, want 64 hex digits", s)
	}
}

// TestKeyOfDoesNotModify: KeyOf only reads the request.
func TestKeyOfDoesNotModify(t *testing.T) {
	r := parse(t, baseBody)
	before := r.AppendJSON(nil)
	_ = cache.KeyOf("o", "m", r)
	if after := r.AppendJSON(nil); string(after) != string(before) {
		t.Fatalf("request changed:\n%s\n%s", before, after)
	}
}

func replace(t *testing.T, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("%q not in %s", old, s)
	}
	return strings.Replace(s, old, new, 1)
}
