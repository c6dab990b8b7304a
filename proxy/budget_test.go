package proxy_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aigw/aigw/accounting/ledger"
	"github.com/aigw/aigw/proxy"
)

// budgetPolicy prices the mock's two models so that one request costs a
// known order of magnitude: "big" at $100/$400 per million tokens, "small"
// at a hundredth of that. Every org has a daily budget of one cent.
func budgetPolicy(hook string) string {
	return `
providers:
  - {id: mock, type: mock, mock: {chunks: 1, reply: "ok"}}
models:
  - {id: big, targets: [{provider: mock, model: big}]}
  - {id: small, targets: [{provider: mock, model: small}]}
orgs:
  - id: refuse
    models: ["*"]
    budget: {daily: "0.01", alerts: [50, 100], webhooks: ["` + hook + `"]}
  - id: down
    models: ["*"]
    budget: {daily: "0.01", on_exhausted: downgrade, downgrade_to: small}
  - id: prio
    models: ["*"]
    budget: {daily: "0.01", on_exhausted: priority_only}
  - id: busy
    models: ["*"]
    budget: {daily: "0.05"}
keys:
  - {id: refuse, org: refuse, sha256: ` + digest("sk-refuse") + `}
  - {id: down, org: down, sha256: ` + digest("sk-down") + `}
  - {id: prio, org: prio, sha256: ` + digest("sk-prio") + `}
  - {id: prio-emergency, org: prio, scopes: [emergency], sha256: ` + digest("sk-prio-emergency") + `}
  - {id: busy, org: busy, sha256: ` + digest("sk-busy") + `}
prices:
  - {provider: mock, model: big, input: "100", output: "400"}
  - {provider: mock, model: small, input: "1", output: "4"}
`
}

const budgetBody = `{"model":"big","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`

// budgetState reads GET /api/ai/budgets?org= (the daily period).
func budgetState(t *testing.T, g *gateway, org string) (limit, spent, reserved int64) {
	t.Helper()
	res := doHTTP(t, http.MethodGet, g.Admin+"/api/ai/budgets?org="+org, "", "")
	var body struct {
		Success bool `json:"success"`
		Data    struct {
			Orgs []struct {
				Periods []struct {
					Period   string `json:"period"`
					Limit    int64  `json:"limit_usd_micros"`
					Spent    int64  `json:"spent_usd_micros"`
					Reserved int64  `json:"reserved_usd_micros"`
				} `json:"periods"`
			} `json:"orgs"`
		} `json:"data"`
	}
	if res.status != 200 || json.Unmarshal(res.body, &body) != nil || len(body.Data.Orgs) != 1 || len(body.Data.Orgs[0].Periods) != 1 {
		t.Fatalf("budgets: %d %s", res.status, res.body)
	}
	p := body.Data.Orgs[0].Periods[0]
	if p.Period != "daily" {
		t.Fatalf("period %q", p.Period)
	}
	return p.Limit, p.Spent, p.Reserved
}

// hookRecorder is a Slack-compatible webhook receiver.
type hookRecorder struct {
	mu     sync.Mutex
	alerts []map[string]any
}

func (h *hookRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var v map[string]any
	if json.Unmarshal(b, &v) != nil || v["text"] == nil {
		http.Error(w, "not slack json", 400)
		return
	}
	h.mu.Lock()
	h.alerts = append(h.alerts, v)
	h.mu.Unlock()
}

func (h *hookRecorder) got() []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]map[string]any(nil), h.alerts...)
}

func TestBudgetRefusesAndAlertsOnce(t *testing.T) {
	hooks := &hookRecorder{}
	hs := httptest.NewServer(hooks)
	defer hs.Close()
	g := startGateway(t, budgetPolicy(hs.URL), nil, func(o *proxy.Options) { o.Prices = shippedTable(t) })

	admitted := 0
	var refused httpResult
	for i := 0; i < 50 && refused.status == 0; i++ {
		res := postJSON(t, g.URL+"/chat/completions", "sk-refuse", budgetBody)
		switch res.status {
		case 200:
			admitted++
		case 429:
			refused = res
		default:
			t.Fatalf("status %d: %s", res.status, res.body)
		}
	}
	if admitted == 0 || refused.status != 429 {
		t.Fatalf("admitted %d, refusal %+v", admitted, refused)
	}
	var e struct {
		Error struct{ Code, Type, Message string } `json:"error"`
	}
	if json.Unmarshal(refused.body, &e) != nil || e.Error.Code != "insufficient_quota" || !strings.Contains(e.Error.Message, "daily budget of $0.01") ||
		refused.header.Get("x-should-retry") != "false" {
		t.Fatalf("refusal %s %v", refused.body, refused.header)
	}
	for range 3 { // more refusals: still one exhausted alert
		if res := postJSON(t, g.URL+"/chat/completions", "sk-refuse", budgetBody); res.status != 429 {
			t.Fatalf("after exhaustion: %d", res.status)
		}
	}
	limit, spent, reserved := budgetState(t, g, "refuse")
	if limit != 10_000 || spent <= 0 || spent > limit || reserved != 0 {
		t.Fatalf("limit %d spent %d reserved %d", limit, spent, reserved)
	}
	if got := g.counter(t, "aigw_budget_refusals_total", map[string]string{"period": "daily"}); got != 4 {
		t.Errorf("aigw_budget_refusals_total = %v, want 4", got)
	}
	// spent/limit passed 50% (the reservation stops requests short of
	// 100%): one 50% alert and one exhausted alert, each once.
	waitFor(t, func() bool { return len(hooks.got()) >= 2 })
	time.Sleep(50 * time.Millisecond)
	var thresholds []string
	for _, a := range hooks.got() {
		m, _ := a["aigw"].(map[string]any)
		thresholds = append(thresholds, strconv.FormatFloat(m["threshold"].(float64), 'f', 0, 64)+"/"+strconv.FormatBool(m["exhausted"].(bool)))
	}
	if strings.Join(thresholds, ",") != "50/false,0/true" {
		t.Errorf("alerts %v, want one at 50%% and one exhausted", thresholds)
	}
	if got := g.counter(t, "aigw_budget_alerts_total", nil); got != 2 {
		t.Errorf("aigw_budget_alerts_total = %v, want 2", got)
	}
}

func TestBudgetDowngrades(t *testing.T) {
	led := &memLedger{}
	g := startGateway(t, budgetPolicy("http://127.0.0.1:1/unused"), nil, func(o *proxy.Options) { o.Prices, o.Ledger = shippedTable(t), led })
	var down httpResult
	for i := 0; i < 50 && down.status == 0; i++ {
		res := postJSON(t, g.URL+"/chat/completions", "sk-down", budgetBody)
		if res.status != 200 {
			t.Fatalf("status %d: %s (a downgrading budget must keep answering)", res.status, res.body)
		}
		if res.header.Get("x-aigw-downgraded-from") != "" {
			down = res
		}
	}
	if down.header.Get("x-aigw-downgraded-from") != "big" {
		t.Fatalf("never downgraded")
	}
	id := down.header.Get("x-request-id")
	for _, r := range led.all() {
		if r.RequestID == id && (r.ModelAlias != "small" || r.UpstreamModel != "small" || r.Outcome != ledger.OutcomeOK) {
			t.Errorf("downgraded record %+v", r)
		}
	}
	_, spent, reserved := budgetState(t, g, "down")
	if spent > 10_000 || reserved != 0 {
		t.Errorf("spent %d reserved %d", spent, reserved)
	}
}

func TestBudgetPriorityOnly(t *testing.T) {
	g := startGateway(t, budgetPolicy("http://127.0.0.1:1/unused"), nil, func(o *proxy.Options) { o.Prices = shippedTable(t) })
	refused := false
	for i := 0; i < 50 && !refused; i++ {
		refused = postJSON(t, g.URL+"/chat/completions", "sk-prio", budgetBody).status == 429
	}
	if !refused {
		t.Fatal("the budget never ran out")
	}
	if res := postJSON(t, g.URL+"/chat/completions", "sk-prio-emergency", budgetBody); res.status != 200 {
		t.Fatalf("emergency key past the budget: %d %s", res.status, res.body)
	}
	if res := postJSON(t, g.URL+"/chat/completions", "sk-prio", budgetBody); res.status != 429 {
		t.Fatalf("ordinary key past the budget: %d", res.status)
	}
}

// TestBudgetConcurrentNeverOverspends: 500 concurrent requests against a
// five-cent budget spend at most the budget (each request's actual cost is
// within its reservation), and no reservation is left when all are done.
func TestBudgetConcurrentNeverOverspends(t *testing.T) {
	g := startGateway(t, budgetPolicy("http://127.0.0.1:1/unused"), nil, func(o *proxy.Options) { o.Prices = shippedTable(t) })
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 500}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for range 500 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, g.URL+"/chat/completions", strings.NewReader(budgetBody))
			req.Header.Set("Authorization", "Bearer sk-busy")
			resp, err := client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			mu.Lock()
			codes[resp.StatusCode]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if codes[200] == 0 || codes[429] == 0 || codes[200]+codes[429] != 500 {
		t.Fatalf("statuses %v", codes)
	}
	limit, spent, reserved := budgetState(t, g, "busy")
	if spent > limit || reserved != 0 {
		t.Fatalf("spent %d of %d, reserved %d after all requests ended (statuses %v)", spent, limit, reserved, codes)
	}
	t.Logf("admitted %d, refused %d, spent %d of %d µUSD", codes[200], codes[429], spent, limit)
}
