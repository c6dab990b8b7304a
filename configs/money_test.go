package configs

import (
	"path/filepath"
	"testing"
)

func TestBudgetsExample(t *testing.T) {
	path := filepath.Join("examples", "budgets.yaml")
	p, _ := mustLoad(t, path, MapEnv(map[string]string{"OPENAI_API_KEY": "sk-test"}))
	byID := map[string]*Org{}
	for i := range p.Orgs {
		byID[p.Orgs[i].ID] = &p.Orgs[i]
	}
	demo, venue, studio := byID["demo"], byID["venue"], byID["studio"]
	if demo == nil || venue == nil || studio == nil {
		t.Fatalf("orgs: %v", byID)
	}
	if demo.Budget.Monthly != "500.00" || demo.Budget.Daily != "40.00" || len(demo.Budget.Alerts) != 3 ||
		demo.Budget.OnExhausted != BudgetRefuse || len(demo.Budget.Webhooks) != 0 {
		t.Errorf("demo budget %+v (an unset webhook env must leave no webhook)", demo.Budget)
	}
	if venue.Budget.OnExhausted != BudgetDowngrade || venue.Budget.DowngradeTo != "gpt-4o-mini" {
		t.Errorf("venue budget %+v", venue.Budget)
	}
	if studio.Budget.OnExhausted != BudgetPriorityOnly || !studio.Budget.Daily.IsZero() {
		t.Errorf("studio budget %+v", studio.Budget)
	}
	for _, o := range []*Org{demo, venue, studio} {
		if o.Currency != (Currency{Code: "GBP", USDRate: "0.79"}) {
			t.Errorf("%s currency %+v", o.ID, o.Currency)
		}
	}
	if len(p.Prices) != 1 || p.Prices[0].Model != "ft:gpt-4o-mini:venue-faq" || p.Prices[0].Input != "0.30" ||
		p.Prices[0].CacheWrite != "" || p.Prices[0].Pos.Line == 0 {
		t.Errorf("prices %+v", p.Prices)
	}
	for _, h := range p.Server.MetadataHeaders {
		if MetadataField(h) == "" {
			t.Errorf("metadata header %q maps to no field", h)
		}
	}

	p, _ = mustLoad(t, path, MapEnv(map[string]string{"OPENAI_API_KEY": "sk-test", "AIGW_BUDGET_WEBHOOK": "https://hooks.slack.com/services/T/B/X"}))
	if w := p.Orgs[0].Budget.Webhooks; len(w) != 1 || w[0].Value() != "https://hooks.slack.com/services/T/B/X" {
		t.Errorf("webhooks with AIGW_BUDGET_WEBHOOK set: %v", w)
	}
}

func TestMetadataField(t *testing.T) {
	for h, want := range map[string]string{
		"X-Aigw-Wedding-Date": MetaWeddingDate, "x-wedding-date": MetaWeddingDate, "Use-Case": MetaUseCase,
		"X-Vendor-Type": MetaVendorType, "x-aigw-wedding-related": MetaWeddingRelated,
		"X-Team": "", "x-aigw-x-use-case": "", "": "",
	} {
		if got := MetadataField(h); got != want {
			t.Errorf("MetadataField(%q) = %q, want %q", h, got, want)
		}
	}
}

func TestCheckDecimal(t *testing.T) {
	for s, ok := range map[string]bool{
		"0": true, "2.50": true, ".5": true, "10": true, "0.000001": true, "123456789012.5": true,
		"": false, "-1": false, "1.": false, "1e3": false, "0.0000001": false, "1,5": false, " 1": false, "1234567890123": false,
	} {
		if got := checkDecimal(s) == ""; got != ok {
			t.Errorf("checkDecimal(%q) ok = %v, want %v", s, got, ok)
		}
	}
}
