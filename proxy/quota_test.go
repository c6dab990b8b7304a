package proxy_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go"

	"github.com/aigw/aigw/policy/quota/quotatest"
	"github.com/aigw/aigw/providers/providertest/fakeopenai"
	"github.com/aigw/aigw/proxy"
)

// tiersRig is configs/examples/tiers.yaml itself, served with its upstream
// pointed at a fake OpenAI and its quotas on a fake clock.
type tiersRig struct {
	fake  *fakeopenai.Server
	g     *gateway
	clock *quotatest.Clock
}

// winter is outside the example's peak season (May to September).
var winter = time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)

func startTiers(t *testing.T, now time.Time) *tiersRig {
	t.Helper()
	b, err := os.ReadFile("../configs/examples/tiers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := &tiersRig{fake: fakeopenai.New(t), clock: quotatest.NewClock(now)}
	r.g = startGateway(t, string(b), map[string]string{"OPENAI_BASE_URL": r.fake.URL(), "OPENAI_API_KEY": "sk-upstream"},
		func(o *proxy.Options) { o.QuotaClock = r.clock })
	return r
}

const helloBody = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}`

func (r *tiersRig) chat(t *testing.T, key string) httpResult {
	t.Helper()
	return postJSON(t, r.g.URL+"/chat/completions", key, helloBody)
}

type errorBody struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Code    *string `json:"code"`
	} `json:"error"`
}

// mustRefuse checks a quota refusal: 429, OpenAI's error shape with code,
// the reason header, Retry-After when retry says so.
func mustRefuse(t *testing.T, what string, res httpResult, code, reason string, retry bool) errorBody {
	t.Helper()
	var e errorBody
	if res.status != http.StatusTooManyRequests || json.Unmarshal(res.body, &e) != nil || e.Error.Code == nil ||
		*e.Error.Code != code || e.Error.Message == "" {
		t.Fatalf("%s: %d %s, want 429 %s", what, res.status, res.body, code)
	}
	if got := res.header.Get("x-aigw-quota-reason"); got != reason {
		t.Fatalf("%s: x-aigw-quota-reason %q, want %q", what, got, reason)
	}
	ra := res.header.Get("Retry-After")
	if secs, err := strconv.Atoi(ra); retry && (err != nil || secs <= 0) {
		t.Fatalf("%s: Retry-After %q, want a positive number of seconds", what, ra)
	}
	return e
}

func TestTiersExampleDemoKeyIsGenerous(t *testing.T) {
	r := startTiers(t, winter)
	res := r.chat(t, demoKey)
	if res.status != 200 {
		t.Fatalf("demo: %d %s", res.status, res.body)
	}
	h := res.header
	if h.Get("x-ratelimit-limit-requests") != "5000" || h.Get("x-ratelimit-remaining-requests") != "4999" ||
		h.Get("x-ratelimit-reset-requests") == "" {
		t.Fatalf("request headers: %v", h)
	}
	if h.Get("x-ratelimit-limit-tokens") != "4000000" || h.Get("x-ratelimit-reset-tokens") == "" {
		t.Fatalf("token headers: %v", h)
	}
	// The reservation (prompt estimate plus 1,024 output tokens: the
	// request gives no max_tokens) is replaced by the real usage once the
	// answer is in: with the clock standing still, the same request again
	// leaves exactly the first one's real tokens fewer.
	var first struct {
		Usage struct {
			Total int64 `json:"total_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(res.body, &first); err != nil || first.Usage.Total <= 0 {
		t.Fatalf("usage in %s: %v", res.body, err)
	}
	rem1, _ := strconv.ParseInt(h.Get("x-ratelimit-remaining-tokens"), 10, 64)
	if reserved := 4_000_000 - rem1; reserved < 1024 {
		t.Fatalf("reserved %d tokens, want at least the 1,024 output estimate", reserved)
	}
	res2 := r.chat(t, demoKey)
	rem2, _ := strconv.ParseInt(res2.header.Get("x-ratelimit-remaining-tokens"), 10, 64)
	if rem1-rem2 != first.Usage.Total {
		t.Fatalf("remaining tokens %d then %d: the first request was settled at %d tokens, want its usage %d",
			rem1, rem2, rem1-rem2, first.Usage.Total)
	}
	// At least 1,000 requests a minute: a burst of 1,000 passes.
	for i := 0; i < 998; i++ {
		if res := postJSON(t, r.g.URL+"/embeddings", demoKey, `{"model":"text-embedding-3-small","input":"hi"}`); res.status != 200 {
			t.Fatalf("demo request %d: %d %s", i+3, res.status, res.body)
		}
	}
}

func TestTiersExamplePeakSeasonRaisesLimits(t *testing.T) {
	r := startTiers(t, time.Date(2027, 6, 12, 9, 0, 0, 0, time.UTC)) // a Saturday in June
	res := r.chat(t, demoKey)
	if res.status != 200 || res.header.Get("x-ratelimit-limit-requests") != "7500" {
		t.Fatalf("peak season: %d, limit %q, want 7500 (5000 x 1.5)", res.status, res.header.Get("x-ratelimit-limit-requests"))
	}
}

func TestTiersExampleFreeTier(t *testing.T) {
	r := startTiers(t, winter)
	// FREE: 3 a minute, 10 a day.
	for i := 0; i < 3; i++ {
		if res := r.chat(t, "sk-aigw-free"); res.status != 200 {
			t.Fatalf("free %d: %d %s", i, res.status, res.body)
		}
	}
	res := r.chat(t, "sk-aigw-free")
	mustRefuse(t, "4th in a minute", res, "rate_limit_exceeded", "org_rpm", true)
	if res.header.Get("Retry-After") != "20" || res.header.Get("x-ratelimit-remaining-requests") != "0" {
		t.Fatalf("Retry-After %q remaining %q, want 20 and 0", res.header.Get("Retry-After"), res.header.Get("x-ratelimit-remaining-requests"))
	}
	if res.header.Get("x-should-retry") == "false" {
		t.Fatal("a rate limit must stay retryable")
	}
	for served := 3; served < 10; served++ {
		r.clock.Advance(20 * time.Second)
		if res := r.chat(t, "sk-aigw-free"); res.status != 200 {
			t.Fatalf("free request %d: %d %s", served+1, res.status, res.body)
		}
	}
	r.clock.Advance(time.Minute)
	res = r.chat(t, "sk-aigw-free")
	e := mustRefuse(t, "11th in a day", res, "insufficient_quota", "org_rpd", true)
	if e.Error.Type != "insufficient_quota" || res.header.Get("x-should-retry") != "false" {
		t.Fatalf("type %q x-should-retry %q", e.Error.Type, res.header.Get("x-should-retry"))
	}
	// The day resets at midnight in Europe/London (UTC in December).
	r.clock.Set(time.Date(2026, 12, 6, 0, 0, 1, 0, time.UTC))
	if res := r.chat(t, "sk-aigw-free"); res.status != 200 {
		t.Fatalf("next day: %d %s", res.status, res.body)
	}
	if got := r.g.counter(t, "aigw_quota_rejections_total", map[string]string{"reason": "org_rpd", "shadow": "false"}); got != 1 {
		t.Fatalf("aigw_quota_rejections_total{org_rpd} = %v, want 1", got)
	}
}

func TestTiersExampleLimitedAndPriorityMode(t *testing.T) {
	r := startTiers(t, winter)
	for i := 0; i < 5; i++ {
		if res := r.chat(t, "sk-aigw-limited"); res.status != 200 {
			t.Fatalf("limited %d: %d %s", i, res.status, res.body)
		}
	}
	res := r.chat(t, "sk-aigw-limited")
	mustRefuse(t, "6th", res, "rate_limit_exceeded", "org_rpm", true)
	if res.header.Get("Retry-After") != "12" || res.header.Get("x-ratelimit-limit-requests") != "5" {
		t.Fatalf("Retry-After %q limit %q, want 12 and 5", res.header.Get("Retry-After"), res.header.Get("x-ratelimit-limit-requests"))
	}

	// A wedding day: priority mode doubles the org's limits at once.
	pr := adminDo(t, http.MethodPost, r.g.Admin+"/api/ai/wedding-day-mode", `{"org":"limited","duration":"2h"}`)
	if pr.status != 200 || !strings.Contains(string(pr.body), `"active":true`) {
		t.Fatalf("start priority mode: %d %s", pr.status, pr.body)
	}
	for i := 0; i < 5; i++ {
		res := r.chat(t, "sk-aigw-limited")
		if res.status != 200 || res.header.Get("x-ratelimit-limit-requests") != "10" {
			t.Fatalf("priority mode request %d: %d limit %q %s", i, res.status, res.header.Get("x-ratelimit-limit-requests"), res.body)
		}
	}
	mustRefuse(t, "over the doubled limit", r.chat(t, "sk-aigw-limited"), "rate_limit_exceeded", "org_rpm", true)
	if got := adminDo(t, http.MethodGet, r.g.Admin+"/api/ai/wedding-day-mode", ""); !strings.Contains(string(got.body), `{"org":"limited","active":true`) {
		t.Fatalf("GET: %s", got.body)
	}
	if got := adminDo(t, http.MethodPost, r.g.Admin+"/api/ai/wedding-day-mode", `{"org":"nobody"}`); got.status != 404 {
		t.Fatalf("unknown org: %d %s", got.status, got.body)
	}
	if got := adminDo(t, http.MethodPost, r.g.Admin+"/api/ai/wedding-day-mode", `{"org":"limited","duration":"-1h"}`); got.status != 400 {
		t.Fatalf("bad duration: %d %s", got.status, got.body)
	}
	// It ends on its own.
	r.clock.Advance(2*time.Hour + time.Second)
	for i := 0; i < 5; i++ {
		if res := r.chat(t, "sk-aigw-limited"); res.status != 200 || res.header.Get("x-ratelimit-limit-requests") != "5" {
			t.Fatalf("after priority mode %d: %d limit %q", i, res.status, res.header.Get("x-ratelimit-limit-requests"))
		}
	}
	mustRefuse(t, "back to 5 a minute", r.chat(t, "sk-aigw-limited"), "rate_limit_exceeded", "org_rpm", true)
	if got := adminDo(t, http.MethodDelete, r.g.Admin+"/api/ai/wedding-day-mode?org=limited", ""); got.status != 200 || strings.Contains(string(got.body), `"active":true`) {
		t.Fatalf("DELETE: %d %s", got.status, got.body)
	}
}

func TestTiersExampleExhaustedNeverReachesUpstream(t *testing.T) {
	r := startTiers(t, winter)
	c := sdk(r.g, "sk-aigw-exhausted")
	_, err := c.Chat.Completions.New(t.Context(), userMsg("hello"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.Code != "insufficient_quota" || apiErr.Type != "insufficient_quota" {
		t.Fatalf("SDK error %v, want 429 insufficient_quota", err)
	}
	stream := c.Chat.Completions.NewStreaming(t.Context(), userMsg("hello"))
	for stream.Next() {
	}
	if !errors.As(stream.Err(), &apiErr) || apiErr.StatusCode != 429 || apiErr.Code != "insufficient_quota" {
		t.Fatalf("stream error %v, want 429 insufficient_quota", stream.Err())
	}
	res := postJSON(t, r.g.URL+"/embeddings", "sk-aigw-exhausted", `{"model":"text-embedding-3-small","input":"hi"}`)
	mustRefuse(t, "embeddings", res, "insufficient_quota", "org_rpd", true)
	if res.header.Get("x-ratelimit-limit-requests") != "0" || res.header.Get("x-should-retry") != "false" {
		t.Fatalf("headers %v", res.header)
	}
	if n := len(r.fake.Requests()); n != 0 {
		t.Fatalf("upstream got %d requests from an org without quota", n)
	}
}

func adminDo(t *testing.T, method, url, body string) httpResult {
	t.Helper()
	return doHTTP(t, method, url, "", body)
}
