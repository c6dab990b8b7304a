package cache_test

import (
	"testing"

	"github.com/aigw/aigw/policy/cache"
)

func TestCacheable(t *testing.T) {
	zeroOnly := cache.Rule{TemperatureZeroOnly: true}
	anyTemp := cache.Rule{}
	const msgs = `"messages":[{"role":"user","content":"hi"}]`
	cases := []struct {
		name           string
		body           string
		zeroOnly, anyT bool
	}{
		{"temperature 0", `{` + msgs + `,"temperature":0}`, true, true},
		{"no temperature (OpenAI default 1)", `{` + msgs + `}`, false, true},
		{"temperature 0.7", `{` + msgs + `,"temperature":0.7}`, false, true},
		{"n=1", `{` + msgs + `,"temperature":0,"n":1}`, true, true},
		{"n=2", `{` + msgs + `,"temperature":0,"n":2}`, false, false},
		{"logprobs", `{` + msgs + `,"temperature":0,"logprobs":true}`, false, false},
		{"logprobs false", `{` + msgs + `,"temperature":0,"logprobs":false}`, true, true},
		{"top_logprobs", `{` + msgs + `,"temperature":0,"top_logprobs":3}`, false, false},
		{"top_logprobs null", `{` + msgs + `,"temperature":0,"top_logprobs":null}`, true, true},
		{"audio output", `{` + msgs + `,"temperature":0,"modalities":["text","audio"],"audio":{"voice":"alloy","format":"wav"}}`, false, false},
		{"stream", `{` + msgs + `,"temperature":0,"stream":true}`, true, true},
		{"no messages", `{"messages":[],"temperature":0}`, false, false},
	}
	for _, tc := range cases {
		r := parse(t, tc.body)
		if got := cache.Cacheable(r, zeroOnly); got != tc.zeroOnly {
			t.Errorf("%s: Cacheable(TemperatureZeroOnly) = %v, want %v", tc.name, got, tc.zeroOnly)
		}
		if got := cache.Cacheable(r, anyTemp); got != tc.anyT {
			t.Errorf("%s: Cacheable(any) = %v, want %v", tc.name, got, tc.anyT)
		}
	}
	if cache.Cacheable(nil, anyTemp) {
		t.Error("a nil request is cacheable")
	}
}
