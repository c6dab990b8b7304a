package cache_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aigw/aigw/policy/cache"
)

// BenchmarkHitL1 is the in-process hit path of Begin.
func BenchmarkHitL1(b *testing.B) {
	c := newCache(b, cache.Options{})
	k := key("o", "bench")
	c.Set(ctx, k, sampleEntry("Sunny"), time.Hour)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, hit, _ := c.Begin(ctx, k); !hit {
				b.Error("miss")
				return
			}
		}
	})
}

// BenchmarkHitRedis is a hit served from the real Redis: the reader's L1
// holds nothing (MaxBytes below the entry's size), so every Get is one
// Redis GET and one decode.
func BenchmarkHitRedis(b *testing.B) {
	client := cache.RedisClient(b)
	ns := cache.UniqueNamespace(b)
	writer := newCache(b, cache.Options{Redis: client, Namespace: ns})
	reader := newCache(b, cache.Options{Redis: client, Namespace: ns, MaxBytes: 1})
	k := key("o", "bench redis")
	e := sampleEntry(strings.Repeat("word ", 200)) // about 1.2 KB
	writer.Set(ctx, k, e, time.Hour)
	b.SetBytes(int64(e.EncodedSize()))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := reader.Get(ctx, k); !ok {
			b.Fatal("miss")
		}
	}
}

// BenchmarkKeyOf hashes a 4 KB request: a system prompt, a few turns, two
// tools with JSON-schema parameters and a response_format schema.
func BenchmarkKeyOf(b *testing.B) {
	body := request4KB(b)
	r := parse(b, body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		_ = cache.KeyOf("org-a", "gpt-4o", r)
	}
}

func request4KB(b *testing.B) string {
	turn := strings.Repeat("Please summarise the following paragraph in one sentence. ", 6)
	schema := map[string]any{"type": "object", "properties": map[string]any{
		"city": map[string]any{"type": "string", "description": "City name, e.g. Paris"},
		"unit": map[string]any{"type": "string", "enum": []string{"celsius", "fahrenheit"}},
		"days": map[string]any{"type": "integer", "minimum": 1, "maximum": 14},
	}, "required": []string{"city"}, "additionalProperties": false}
	req := map[string]any{
		"model":       "gpt-4o",
		"temperature": 0,
		"max_tokens":  512,
		"messages": []any{
			map[string]any{"role": "system", "content": strings.Repeat("You are a careful assistant. ", 32)},
			map[string]any{"role": "user", "content": turn},
			map[string]any{"role": "assistant", "content": turn},
			map[string]any{"role": "user", "content": turn},
			map[string]any{"role": "assistant", "content": turn},
			map[string]any{"role": "user", "content": turn},
		},
		"tools": []any{
			map[string]any{"type": "function", "function": map[string]any{"name": "get_weather", "description": "Weather", "parameters": schema}},
			map[string]any{"type": "function", "function": map[string]any{"name": "get_forecast", "description": "Forecast", "parameters": schema}},
		},
		"response_format":   map[string]any{"type": "json_schema", "json_schema": map[string]any{"name": "answer", "schema": schema}},
		"presence_penalty":  0.1,
		"frequency_penalty": 0.1,
	}
	out, err := json.Marshal(req)
	if err != nil {
		b.Fatal(err)
	}
	if n := len(out); n < 3800 || n > 4400 {
		b.Fatalf("request is %d bytes, want about 4 KB", n)
	}
	return string(out)
}
