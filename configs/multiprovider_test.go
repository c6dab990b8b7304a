package configs_test

import (
	"strings"
	"testing"

	"github.com/aigw/aigw/configs"
)

// TestMultiProviderExample pins examples/multi-provider.yaml, a contract the
// end-to-end tests (proxy/e2e_providers_test.go) and the docs rely on: its
// model names, where each goes, the env variables it reads, and that it is
// the openai example's demo org and key.
func TestMultiProviderExample(t *testing.T) {
	const f = "examples/multi-provider.yaml"
	env := map[string]string{"OPENAI_API_KEY": "sk-o", "ANTHROPIC_API_KEY": "sk-a", "GEMINI_API_KEY": "g"}
	p, rep, err := configs.Load(f, configs.MapEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Warnings) != 0 {
		t.Errorf("warnings with every key set: %v", rep.Warnings)
	}
	type prov struct{ typ, base, key string }
	want := map[string]prov{
		"openai":    {"openai", "https://api.openai.com/v1", "sk-o"},
		"anthropic": {"anthropic", "https://api.anthropic.com", "sk-a"},
		"gemini":    {"gemini", "https://generativelanguage.googleapis.com", "g"},
	}
	if len(p.Providers) != len(want) {
		t.Fatalf("%d providers", len(p.Providers))
	}
	for _, pr := range p.Providers {
		w, ok := want[pr.ID]
		if !ok || pr.Type != w.typ || pr.BaseURL != w.base || pr.APIKey.Value() != w.key {
			t.Errorf("provider %s: type %q base %q key %q", pr.ID, pr.Type, pr.BaseURL, pr.APIKey.Value())
		}
	}
	routes := map[string]string{}
	for _, m := range p.Models {
		if len(m.Targets) != 1 {
			t.Fatalf("model %s has %d targets", m.ID, len(m.Targets))
		}
		routes[m.ID] = m.Type + " " + m.Targets[0].Provider + "/" + m.Targets[0].Model
	}
	wantRoutes := map[string]string{
		"gpt-4o-mini":            "chat openai/gpt-4o-mini",
		"text-embedding-3-small": "embedding openai/text-embedding-3-small",
		"claude-haiku-4-5":       "chat anthropic/claude-haiku-4-5",
		"gemini-2.0-flash":       "chat gemini/gemini-2.0-flash",
	}
	if len(routes) != len(wantRoutes) {
		t.Errorf("models %v", routes)
	}
	for id, r := range wantRoutes {
		if routes[id] != r {
			t.Errorf("model %s routes to %q, want %q", id, routes[id], r)
		}
	}

	// The demo org and key are the openai example's.
	o, _, err := configs.Load("examples/openai.yaml", configs.MapEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Keys) != 1 || len(p.Orgs) != 1 || p.Keys[0].ID != o.Keys[0].ID || p.Keys[0].SHA256 != o.Keys[0].SHA256 ||
		p.Keys[0].Org != o.Keys[0].Org || p.Orgs[0].ID != o.Orgs[0].ID || strings.Join(p.Orgs[0].Models, ",") != "*" {
		t.Errorf("keys %+v orgs %+v differ from openai.yaml's", p.Keys, p.Orgs)
	}

	// Base URLs follow the *_BASE_URL variables; missing keys only warn.
	p, rep, err = configs.Load(f, configs.MapEnv(map[string]string{
		"OPENAI_BASE_URL": "http://127.0.0.1:1/v1", "ANTHROPIC_BASE_URL": "http://127.0.0.1:2", "GEMINI_BASE_URL": "http://127.0.0.1:3/"}))
	if err != nil {
		t.Fatal(err)
	}
	for i, base := range []string{"http://127.0.0.1:1/v1", "http://127.0.0.1:2", "http://127.0.0.1:3"} {
		if p.Providers[i].BaseURL != base {
			t.Errorf("provider %s base %q, want %q", p.Providers[i].ID, p.Providers[i].BaseURL, base)
		}
	}
	if len(rep.Warnings) != 3 {
		t.Errorf("want one warning per unset key, got %v", rep.Warnings)
	}
}
