package proxy_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aigw/aigw/accounting"
	"github.com/aigw/aigw/accounting/prices"
	"github.com/aigw/aigw/configs"
	"github.com/aigw/aigw/providers/providertest/fakeopenai"
	"github.com/aigw/aigw/proxy"
)

func shippedTable(t testing.TB) *prices.Table {
	t.Helper()
	table, err := prices.Load(bytes.NewReader(configs.DefaultPrices()), "configs/prices.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return table
}

// TestRecordCurrencyAndMetadata runs budgets.yaml: the record carries the
// cost in USD and in the org's GBP at its rate, and the allow-listed
// metadata headers (malformed dates and flags are left out).
func TestRecordCurrencyAndMetadata(t *testing.T) {
	led := &memLedger{}
	fake := fakeopenai.New(t)
	example, err := os.ReadFile("../configs/examples/budgets.yaml")
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, string(example), map[string]string{"OPENAI_BASE_URL": fake.URL(), "OPENAI_API_KEY": "k"},
		func(o *proxy.Options) { o.Ledger, o.Prices = led, shippedTable(t) })

	send := func(h map[string]string) string {
		req, _ := http.NewRequest(http.MethodPost, g.URL+"/chat/completions",
			strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}`))
		req.Header.Set("Authorization", "Bearer "+demoKey)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		return resp.Header.Get("x-request-id")
	}
	good := send(map[string]string{"X-Aigw-Use-Case": "client-email", "X-Aigw-Vendor-Type": "photographer",
		"X-Aigw-Wedding-Date": "2027-06-12", "X-Aigw-Wedding-Related": "true"})
	bad := send(map[string]string{"X-Aigw-Wedding-Date": "12/06/2027", "X-Aigw-Wedding-Related": "maybe", "X-Team": "ops"})
	if len(fake.Requests()) != 2 {
		t.Fatalf("upstream saw %d requests", len(fake.Requests()))
	}
	for _, r := range fake.Requests() {
		if r.Header.Get("X-Aigw-Use-Case") != "" || r.Header.Get("X-Aigw-Wedding-Date") != "" {
			t.Errorf("metadata header forwarded upstream: %v", r.Header)
		}
	}
	rate, _ := accounting.ParseRate("GBP", "0.79")
	byID := map[string]bool{}
	for _, rec := range led.all() {
		byID[rec.RequestID] = true
		if rec.DisplayCurrency != "GBP" || rec.CostUSDMicros <= 0 || rec.CostDisplayMicros != rate.Convert(rec.CostUSDMicros) {
			t.Errorf("cost %d USD micros, %d %s micros", rec.CostUSDMicros, rec.CostDisplayMicros, rec.DisplayCurrency)
		}
		switch rec.RequestID {
		case good:
			if rec.UseCase != "client-email" || rec.VendorType != "photographer" || rec.WeddingDate != "2027-06-12" || !rec.WeddingRelated {
				t.Errorf("metadata %+v", rec)
			}
		case bad:
			if rec.WeddingDate != "" || rec.WeddingRelated || rec.UseCase != "" {
				t.Errorf("malformed metadata recorded: %+v", rec)
			}
		}
	}
	if !byID[good] || !byID[bad] {
		t.Fatalf("records %v, want %s and %s", byID, good, bad)
	}
}

// TestUnpricedModelRefused: a policy routing to a model the price table
// lacks does not load; pricing it in the policy makes it load.
func TestUnpricedModelRefused(t *testing.T) {
	policy := `
providers: [{id: local, type: openai, base_url: "http://127.0.0.1:1/v1"}]
models: [{id: llama, targets: [{provider: local, model: llama-3.1-8b}]}]
orgs: [{id: o, models: ["*"]}]
keys: [{id: k, org: o, sha256: ` + digest("sk-x") + `}]
`
	load := func(text string) func() (*configs.Policy, error) {
		path := filepath.Join(t.TempDir(), "p.yaml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return func() (*configs.Policy, error) {
			p, _, err := configs.Load(path, configs.MapEnv(nil))
			return p, err
		}
	}
	opts := proxy.Options{Prices: shippedTable(t), Logger: slog.New(slog.DiscardHandler), NoHealthChecks: true}
	_, err := proxy.New(load(policy), opts)
	if err == nil || !strings.Contains(err.Error(), `no price for local model "llama-3.1-8b"`) || !strings.Contains(err.Error(), "p.yaml:3") {
		t.Fatalf("unpriced policy: err = %v", err)
	}
	priced := policy + `prices: [{provider: local, model: llama-3.1-8b, input: "0.10", output: "0.20"}]` + "\n"
	srv, err := proxy.New(load(priced), opts)
	if err != nil {
		t.Fatalf("priced policy: %v", err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
