package configs

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden *.errors files of testdata/bad and testdata/baddir")

// testEnv is the environment of the testdata tests.
func testEnv() Env {
	return MapEnv(map[string]string{
		"OPENAI_BASE_URL":   "https://proxy.example.com/v1",
		"ANTHROPIC_API_KEY": "sk-ant-test",
		"EMPTY_VAR":         "",
	})
}

func mustLoad(t *testing.T, path string, env Env) (*Policy, *Report) {
	t.Helper()
	p, rep, err := Load(path, env)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	if p == nil || rep == nil {
		t.Fatalf("Load(%s) = %v, %v, nil; want a policy and a report", path, p, rep)
	}
	return p, rep
}

func warnings(rep *Report) []string {
	var out []string
	for _, w := range rep.Warnings {
		out = append(out, w.String())
	}
	return out
}

func TestLoadGoodFull(t *testing.T) {
	const f = "testdata/good/full.yaml"
	p, rep := mustLoad(t, f, testEnv())

	if got, want := warnings(rep), []string{f + ":20: environment variable AZURE_KEY is not set"}; !reflect.DeepEqual(got, want) {
		t.Errorf("warnings = %q, want %q", got, want)
	}
	fast := Timeouts{Connect: Duration(2 * time.Second), FirstByte: Duration(30 * time.Second), Idle: Duration(15 * time.Second), Total: Duration(5 * time.Minute)}
	want := Policy{
		Server: Server{MaxBodyBytes: 512 << 10, MetadataHeaders: []string{"X-Aigw-Use-Case", "x-wedding-date"}},
		Providers: []Provider{
			{ID: "openai", Type: "openai", BaseURL: "https://proxy.example.com/v1", APIKey: "sk-from-file", MaxConns: 64, Timeouts: fast, Pos: Pos{f, 7}},
			{ID: "azure-eu", Type: "azure", BaseURL: "https://example-eu.openai.azure.com/openai", APIVersion: "2024-10-21", MaxConns: 512, Timeouts: fast, Pos: Pos{f, 17}},
			{ID: "claude", Type: "anthropic", BaseURL: "https://api.anthropic.com/v1", APIKey: "sk-ant-test", APIVersion: "2023-06-01", MaxConns: 512,
				Timeouts: Timeouts{Connect: DefaultConnectTimeout, FirstByte: Duration(90 * time.Second), Idle: DefaultIdleTimeout, Total: DefaultTotalTimeout}, Pos: Pos{f, 23}},
			{ID: "gemini", Type: "gemini", BaseURL: "https://generativelanguage.googleapis.com/v1beta", APIKey: "literal-gemini-key", MaxConns: 512,
				Timeouts: Timeouts{DefaultConnectTimeout, DefaultFirstByteTimeout, DefaultIdleTimeout, DefaultTotalTimeout}, Pos: Pos{f, 30}},
			{ID: "fake", Type: "mock", MaxConns: 512, Timeouts: Timeouts{DefaultConnectTimeout, DefaultFirstByteTimeout, DefaultIdleTimeout, DefaultTotalTimeout},
				Mock: &Mock{Latency: Duration(150 * time.Millisecond), Chunks: 3, ChunkInterval: Duration(5 * time.Millisecond), Reply: "costs $5, literal ${HOME}", Dimensions: 8}, Pos: Pos{f, 34}},
		},
		Models: []Model{
			{ID: "gpt-4o", Type: "chat", Targets: []TargetRef{
				{Provider: "openai", Model: "gpt-4o", Pos: Pos{f, 46}},
				{Provider: "azure-eu", Model: "gpt-4o-2024-08-06", Pos: Pos{f, 47}},
			}, Pos: Pos{f, 44}},
			{ID: "claude-sonnet", Type: "chat", Targets: []TargetRef{
				{Provider: "claude", Model: "claude-sonnet-4-5", MaxTokens: 4096, Pos: Pos{f, 52}},
				{Provider: "fake", Model: "claude-sonnet", Pos: Pos{f, 53}},
			}, Pos: Pos{f, 49}},
			{ID: "embed", Type: "embedding", Targets: []TargetRef{
				{Provider: "gemini", Model: "text-embedding-004", Pos: Pos{f, 57}},
				{Provider: "fake", Model: "embed", Pos: Pos{f, 59}},
			}, Pos: Pos{f, 54}},
		},
		Orgs: []Org{
			{ID: "acme", Models: []string{"*"}, Pos: Pos{f, 62}},
			{ID: "small", Models: []string{"gpt-4o", "embed"}, Pos: Pos{f, 64}},
		},
		Keys: []Key{
			{ID: "acme-prod", Org: "acme", SHA256: "c7b51ef2e45c5f05cefec08758a05482886576bee37a4eb2294eb7bcc3923d82", Pos: Pos{f, 68}},
			{ID: "acme-ci", Org: "acme", SHA256: "0000000000000000000000000000000000000000000000000000000000000001", Models: []string{"embed"}, Disabled: true, Pos: Pos{f, 71}},
			{ID: "small-1", Org: "small", SHA256: "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789", Models: []string{"*"}, Pos: Pos{f, 76}},
		},
		Sources: []string{f},
	}
	if len(p.Checksum) != 64 {
		t.Errorf("Checksum = %q, want 64 hex characters", p.Checksum)
	}
	p.Checksum = ""
	if !reflect.DeepEqual(*p, want) {
		t.Errorf("policy mismatch\n got: %#v\nwant: %#v", *p, want)
		for i := range min(len(p.Providers), len(want.Providers)) {
			if !reflect.DeepEqual(p.Providers[i], want.Providers[i]) {
				t.Errorf("providers[%d]:\n got %+v %+v\nwant %+v %+v", i, p.Providers[i], p.Providers[i].Mock, want.Providers[i], want.Providers[i].Mock)
			}
		}
	}
	// The secret was resolved, and is usable in clear only through Value.
	if got := p.Providers[0].APIKey.Value(); got != "sk-from-file" {
		t.Errorf("APIKey.Value() = %q", got)
	}
}

func TestLoadGoodMinimalDefaults(t *testing.T) {
	const f = "testdata/good/minimal.yaml"
	p, rep := mustLoad(t, f, nil)
	if len(rep.Warnings) != 0 {
		t.Errorf("warnings: %q", warnings(rep))
	}
	if p.Server.MaxBodyBytes != 8<<20 || p.Server.MetadataHeaders != nil {
		t.Errorf("server = %+v, want defaults", p.Server)
	}
	pr := p.Providers[0]
	if pr.BaseURL != "http://127.0.0.1:8000/v1" {
		t.Errorf("base_url %q: trailing slash not trimmed", pr.BaseURL)
	}
	if pr.MaxConns != 512 || pr.Mock != nil || pr.APIKey != "" {
		t.Errorf("provider = %+v", pr)
	}
	wantT := Timeouts{Connect: Duration(5 * time.Second), FirstByte: Duration(120 * time.Second), Idle: Duration(60 * time.Second), Total: Duration(10 * time.Minute)}
	if pr.Timeouts != wantT {
		t.Errorf("timeouts = %+v, want %+v", pr.Timeouts, wantT)
	}
	m := p.Models[0]
	if m.Type != ModelChat || m.Targets[0].Model != "llama" || m.Targets[0].MaxTokens != 0 {
		t.Errorf("model = %+v", m)
	}
	if k := p.Keys[0]; k.Disabled || k.Models != nil || k.Pos != (Pos{f, 14}) {
		t.Errorf("key = %+v", k)
	}
}

func TestLoadGoodMockDefaults(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p.yaml"), `
providers: [{id: m, type: mock}]
models: [{id: x, targets: [{provider: m}]}]
orgs: [{id: o, models: ["*"]}]
keys: [{id: k, org: o, sha256: 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824}]
`)
	p, _ := mustLoad(t, dir, nil)
	want := Mock{Chunks: 8, Reply: "This is a mock answer from aigw.", Dimensions: 1536}
	if got := p.Providers[0].Mock; got == nil || *got != want {
		t.Errorf("mock = %+v, want %+v", got, want)
	}
}

func TestLoadGoodDirectory(t *testing.T) {
	const dir = "testdata/gooddir/split"
	p, rep := mustLoad(t, dir, nil)
	if len(rep.Warnings) != 0 {
		t.Errorf("warnings: %q", warnings(rep))
	}
	wantSources := []string{dir + "/10-providers.yaml", dir + "/20-models.yml", dir + "/30-tenants.yaml", dir + "/40-more-tenants.yaml"}
	if !reflect.DeepEqual(p.Sources, wantSources) {
		t.Errorf("Sources = %q, want %q (README, hidden files and directories skipped)", p.Sources, wantSources)
	}
	var orgs, keys []string
	for _, o := range p.Orgs {
		orgs = append(orgs, o.ID+"@"+o.Pos.String())
	}
	for _, k := range p.Keys {
		keys = append(keys, k.ID+"@"+k.Pos.String())
	}
	if want := []string{"a@" + dir + "/30-tenants.yaml:2", "b@" + dir + "/40-more-tenants.yaml:2"}; !reflect.DeepEqual(orgs, want) {
		t.Errorf("orgs = %q, want %q", orgs, want)
	}
	if want := []string{"a1@" + dir + "/30-tenants.yaml:5", "b1@" + dir + "/40-more-tenants.yaml:5"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("keys = %q, want %q", keys, want)
	}
	if p.Server.MaxBodyBytes != 1<<20 {
		t.Errorf("server.max_body_bytes = %d", p.Server.MaxBodyBytes)
	}
	sum, err := checksumPath(dir)
	if err != nil || sum != p.Checksum {
		t.Errorf("checksumPath = %q, %v; want Policy.Checksum %q", sum, err, p.Checksum)
	}
	// The checksum does not depend on how the directory is spelled.
	sum2, err := checksumPath("./" + dir + "/")
	if err != nil || sum2 != sum {
		t.Errorf("checksum of ./dir/ = %q, %v; want %q", sum2, err, sum)
	}
}

func TestExamples(t *testing.T) {
	for _, name := range []string{"quickstart.yaml", "openai.yaml"} {
		for _, env := range []map[string]string{nil, {"OPENAI_API_KEY": "sk-test"}} {
			path := "examples/" + name
			p, rep, err := Load(path, MapEnv(env))
			if err != nil {
				t.Errorf("Load(%s, %v): %v", path, env, err)
				continue
			}
			_ = rep // warnings allowed (OPENAI_API_KEY unset)
			var models []string
			for _, m := range p.Models {
				models = append(models, m.ID+":"+m.Type)
				for _, tg := range m.Targets {
					if tg.Model != m.ID || tg.Provider != p.Providers[0].ID {
						t.Errorf("%s: target %+v of %s", path, tg, m.ID)
					}
				}
			}
			if want := []string{"gpt-4o:chat", "gpt-4o-mini:chat", "text-embedding-3-small:embedding"}; !reflect.DeepEqual(models, want) {
				t.Errorf("%s: models %q, want %q", path, models, want)
			}
			if len(p.Orgs) != 1 || p.Orgs[0].ID != "demo" || !reflect.DeepEqual(p.Orgs[0].Models, []string{"*"}) {
				t.Errorf("%s: orgs %+v", path, p.Orgs)
			}
			if len(p.Keys) != 1 || p.Keys[0].ID != "demo" || p.Keys[0].Org != "demo" ||
				p.Keys[0].SHA256 != "c7b51ef2e45c5f05cefec08758a05482886576bee37a4eb2294eb7bcc3923d82" {
				t.Errorf("%s: keys %+v", path, p.Keys)
			}
			if len(p.Providers) != 1 {
				t.Fatalf("%s: providers %+v", path, p.Providers)
			}
			pr := p.Providers[0]
			switch name {
			case "quickstart.yaml":
				want := Mock{Latency: Duration(50 * time.Millisecond), Chunks: 8, ChunkInterval: Duration(20 * time.Millisecond), Reply: DefaultMockReply, Dimensions: 1536}
				if pr.ID != "mock" || pr.Type != "mock" || pr.Mock == nil || *pr.Mock != want {
					t.Errorf("%s: provider %+v mock %+v", path, pr, pr.Mock)
				}
			case "openai.yaml":
				if pr.ID != "openai" || pr.Type != "openai" || pr.BaseURL != "https://api.openai.com/v1" || pr.APIKey.Value() != env["OPENAI_API_KEY"] {
					t.Errorf("%s: provider %+v", path, pr)
				}
				wantWarn := 0
				if env == nil {
					wantWarn = 1
				}
				if len(rep.Warnings) != wantWarn {
					t.Errorf("%s with env %v: warnings %q", path, env, warnings(rep))
				}
			}
		}
	}
}

// TestBadGolden loads every testdata/bad/*.yaml file and every
// testdata/baddir/* directory and compares the report with the golden
// *.errors file next to it: the problems (Report.Error), then the warnings
// prefixed with "warning: ". Run with -update to rewrite the goldens, then
// review the diff.
func TestBadGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*.yaml")
	dirs, _ := filepath.Glob("testdata/baddir/*")
	var cases []string
	cases = append(cases, files...)
	for _, d := range dirs {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			cases = append(cases, d)
		}
	}
	if len(cases) < 10 {
		t.Fatalf("only %d bad cases found", len(cases))
	}
	for _, path := range cases {
		t.Run(filepath.Base(path), func(t *testing.T) {
			p, rep, err := Load(path, testEnv())
			if p != nil {
				t.Errorf("Load returned a policy despite problems")
			}
			var r *Report
			if !errors.As(err, &r) || r != rep {
				t.Fatalf("err = %v (%T); want the *Report", err, err)
			}
			if len(rep.Problems) == 0 {
				t.Fatalf("no problems reported")
			}
			got := rep.Error() + "\n"
			for _, w := range rep.Warnings {
				got += "warning: " + w.String() + "\n"
			}
			golden := path + ".errors"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestBadGolden -update, then review)", err)
			}
			if got != string(want) {
				t.Errorf("report mismatch for %s\n--- got:\n%s--- want:\n%s", path, got, want)
			}
			for _, pr := range rep.Problems {
				if !strings.HasPrefix(pr.Pos.File, path) {
					t.Errorf("problem %q is not located under %s", pr, path)
				}
			}
		})
	}
}

func TestLoadIOErrors(t *testing.T) {
	p, rep, err := Load("testdata/does-not-exist", nil)
	if err == nil || p != nil || rep != nil {
		t.Fatalf("Load(missing) = %v, %v, %v; want an I/O error only", p, rep, err)
	}
	var r *Report
	if errors.As(err, &r) {
		t.Errorf("I/O error is a *Report: %v", err)
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want to wrap os.ErrNotExist", err)
	}
}

func TestLoadEmptyDirectory(t *testing.T) {
	dir := t.TempDir()
	p, rep, err := Load(dir, nil)
	if p != nil || err == nil || rep == nil {
		t.Fatalf("Load(empty dir) = %v, %v, %v", p, rep, err)
	}
	want := dir + ": no policy files (*.yaml, *.yml) in directory"
	if err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
}

func TestReportSortedAndOneLineEach(t *testing.T) {
	_, rep, _ := Load("testdata/baddir/split", testEnv())
	if rep == nil {
		t.Fatal("no report")
	}
	lines := strings.Split(rep.Error(), "\n")
	if len(lines) != len(rep.Problems) {
		t.Fatalf("%d lines for %d problems", len(lines), len(rep.Problems))
	}
	for i := 1; i < len(rep.Problems); i++ {
		a, b := rep.Problems[i-1].Pos, rep.Problems[i].Pos
		if a.File > b.File || a.File == b.File && a.Line > b.Line {
			t.Errorf("problems not sorted: %v before %v", a, b)
		}
	}
}

func TestSecretFileRelativeToPolicyAndTrimmed(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "keys", "a.key"), "sk-a\r\n\n")
	abs := filepath.Join(dir, "keys", "b.key")
	writeFile(t, abs, "sk-b")
	writeFile(t, filepath.Join(dir, "policy", "p.yaml"), `
providers:
  - {id: a, type: openai, base_url: "https://a.example", api_key: "file:../keys/a.key"}
  - {id: b, type: openai, base_url: "https://b.example", api_key: "file:${B_KEY_FILE}"}
  - {id: c, type: openai, base_url: "https://c.example", api_key: "not-a-file:x"}
models: [{id: x, targets: [{provider: a}, {provider: b}, {provider: c}]}]
orgs: [{id: o, models: ["*"]}]
keys: [{id: k, org: o, sha256: 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824}]
`)
	p, _ := mustLoad(t, filepath.Join(dir, "policy"), MapEnv(map[string]string{"B_KEY_FILE": abs}))
	for i, want := range []string{"sk-a", "sk-b", "not-a-file:x"} {
		if got := p.Providers[i].APIKey.Value(); got != want {
			t.Errorf("providers[%d].api_key = %q, want %q", i, got, want)
		}
	}
}

func TestLoadAliasBombIsBounded(t *testing.T) {
	// One model with n targets, aliased n times: n*n target decodes
	// without a budget, from a file of O(n) bytes.
	const n = 3000
	var b strings.Builder
	b.WriteString("providers: [{id: p, type: mock}]\nmodels:\n  - &m {id: m, targets: [")
	for i := 0; i < n; i++ {
		b.WriteString("{provider: p},")
	}
	b.WriteString("]}\n")
	for i := 0; i < n; i++ {
		b.WriteString("  - *m\n")
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p.yaml"), b.String())
	start := time.Now()
	_, rep, _ := Load(dir, nil)
	if rep == nil || !strings.Contains(rep.Error(), "too many nodes after alias expansion") {
		t.Fatalf("no alias budget problem reported")
	}
	if len(rep.Problems) > 2*n {
		t.Errorf("%d problems: report not bounded", len(rep.Problems))
	}
	t.Logf("took %v", time.Since(start))
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
