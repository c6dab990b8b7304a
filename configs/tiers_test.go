package configs_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aigw/aigw/configs"
)

// TestTiersExample pins examples/tiers.yaml, a contract: its upstream is
// openai.yaml's, its tiers are FREE (10 a day), STARTER (100 a day),
// PROFESSIONAL and ENTERPRISE, and its keys are the demo keys.
func TestTiersExample(t *testing.T) {
	env := map[string]string{"OPENAI_API_KEY": "sk-test"}
	p, _, err := configs.Load("examples/tiers.yaml", configs.MapEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	if pr := p.Providers[0]; len(p.Providers) != 1 || pr.Type != "openai" || pr.BaseURL != "https://api.openai.com/v1" || pr.APIKey.Value() != "sk-test" {
		t.Fatalf("providers %+v", p.Providers)
	}
	tiers := map[string]configs.Limits{}
	for _, tr := range p.Tiers {
		tiers[tr.ID] = tr.Limits
	}
	if tiers["FREE"].RPD.Max != 10 || tiers["STARTER"].RPD.Max != 100 ||
		tiers["PROFESSIONAL"].RPD.Max <= 100 || tiers["ENTERPRISE"].RPD.Max <= tiers["PROFESSIONAL"].RPD.Max {
		t.Fatalf("tiers %+v", tiers)
	}
	for id, l := range tiers {
		if l.RPM.Max <= 0 {
			t.Errorf("tier %s has no per-minute rate", id)
		}
	}
	orgs := map[string]configs.Org{}
	for _, o := range p.Orgs {
		orgs[o.ID] = o
	}
	demo := orgs["demo"]
	if tiers[demo.Tier].RPM.Max < 1000 || len(demo.Schedules) != 1 || demo.Schedules[0].From != "05-01" ||
		demo.Schedules[0].To != "09-30" || demo.PriorityMode.Duration.D() <= 0 {
		t.Fatalf("demo org %+v", demo)
	}
	if orgs["free"].Tier != "FREE" || orgs["limited"].Limits.RPM.Max != 5 {
		t.Fatalf("free %+v limited %+v", orgs["free"], orgs["limited"])
	}
	if got := orgs["exhausted"].Limits.RPD; got.Max != configs.Zero {
		t.Fatalf("exhausted rpd %+v: `rpd: 0` must mean a zero quota", got)
	}
	want := map[string]string{
		"demo":      "c7b51ef2e45c5f05cefec08758a05482886576bee37a4eb2294eb7bcc3923d82",
		"free":      "3f7707c5baa5ce71b7acc9438232d2602c52b8793df88725087788d14733ff14",
		"limited":   "0e32782647b7423c3c92b0a96f44b8e70b0290bc41683b751a8a0665b3904009",
		"exhausted": "7dd36c438a426d7da288d4331d63890e0044c92a6caab16b9af174a048b082ec",
	}
	for _, k := range p.Keys {
		if h, ok := want[k.ID]; ok && (k.SHA256 != h || k.Org != k.ID) {
			t.Errorf("key %s: %+v", k.ID, k)
		}
		delete(want, k.ID)
	}
	if len(want) != 0 {
		t.Errorf("keys missing: %v", want)
	}
}

func TestLimitSyntax(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, `
providers: [{id: m, type: mock}]
models: [{id: x, targets: [{provider: m}]}]
tiers:
  - id: T
    limits: {rpm: 10, tpm: {max: 1000, burst: 200, shadow: true}, rpd: 5}
orgs:
  - id: o
    tier: T
    limits: {rpm: unlimited, rpd: {max: 0}, tph: 0}
keys: [{id: k, org: o, sha256: c7b51ef2e45c5f05cefec08758a05482886576bee37a4eb2294eb7bcc3923d82}]
`)
	p, _, err := configs.Load(dir, configs.MapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	tl, ol := p.Tiers[0].Limits, p.Orgs[0].Limits
	if tl.RPM.Max != 10 || tl.TPM != (configs.Limit{Max: 1000, Burst: 200, Shadow: true}) || tl.TPH.Max != 0 {
		t.Fatalf("tier limits %+v", tl)
	}
	if ol.RPM.Max != configs.Unlimited || ol.RPD.Max != configs.Zero || ol.TPH.Max != configs.Zero || ol.TPM.Max != 0 {
		t.Fatalf("org limits %+v", ol)
	}
	writePolicy(t, dir, `
providers: [{id: m, type: mock}]
models: [{id: x, targets: [{provider: m}]}]
tiers: [{id: T, limits: {rpm: unlimited}}]
orgs: [{id: o, tier: NOPE, limits: {rpd: -3}, timezone: Mars/Olympus}]
keys: [{id: k, org: o, sha256: c7b51ef2e45c5f05cefec08758a05482886576bee37a4eb2294eb7bcc3923d82}]
`)
	if _, _, err := configs.Load(dir, configs.MapEnv(nil)); err == nil {
		t.Fatal("bad limits accepted")
	} else {
		for _, want := range []string{"unlimited is only meaningful", "NOPE", "rpd", "Mars/Olympus"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
	}
}

func writePolicy(t *testing.T, dir, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
