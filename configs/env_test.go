package configs

import (
	"reflect"
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	env := MapEnv(map[string]string{"A": "alpha", "B": "", "LONG_name_2": "x2"})
	for _, tc := range []struct {
		in, want string
		empty    []varUse
		err      string
	}{
		{in: "plain", want: "plain"},
		{in: "${A}", want: "alpha"},
		{in: "pre-${A}-post", want: "pre-alpha-post"},
		{in: "${A}${A}", want: "alphaalpha"},
		{in: "${LONG_name_2}", want: "x2"},
		{in: "${A:-x}", want: "alpha"},
		{in: "${U:-x}", want: "x"},             // unset: default
		{in: "${B:-x}", want: "x"},             // set but empty: default, as in sh
		{in: "${U:-}", want: ""},               // empty default: no warning
		{in: "${U:-a b:c/d}", want: "a b:c/d"}, // any text but "}"
		{in: "${U:-${A}", want: "${A"},         // no nesting: the default is literal
		{in: "${U}", want: "", empty: []varUse{{"U", true}}},
		{in: "${B}", want: "", empty: []varUse{{"B", false}}},
		{in: "x${U}y${B}", want: "xy", empty: []varUse{{"U", true}, {"B", false}}},
		{in: "$${A}", want: "${A}"},            // escape
		{in: "$$${A}", want: "$alpha"},         // "$" then a reference
		{in: "$A $ {A} $", want: "$A $ {A} $"}, // lone "$" is literal
		{in: "costs $5", want: "costs $5"},
		{in: "${", err: "invalid"},
		{in: "${}", err: "invalid"},
		{in: "${1A}", err: "invalid"},
		{in: "${A", err: "unterminated"},
		{in: "${A:-x", err: "unterminated"},
		{in: "${A-x}", err: "invalid"},
		{in: "${A:?x}", err: "invalid"},
		{in: "${A B}", err: "invalid"},
	} {
		got, empty, err := expand(tc.in, env)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("expand(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want || !reflect.DeepEqual(empty, tc.empty) {
			t.Errorf("expand(%q) = %q, %v, %v; want %q, %v", tc.in, got, empty, err, tc.want, tc.empty)
		}
	}
}

func TestExpandNilEnv(t *testing.T) {
	got, empty, err := expand("${HOME}", nil)
	if err != nil || got != "" || len(empty) != 1 || !empty[0].unset {
		t.Errorf("expand with nil env = %q, %v, %v", got, empty, err)
	}
}

func TestExpandErrorsDoNotEchoValues(t *testing.T) {
	_, _, err := expand("${KEY:-sk-secret-default", nil)
	if err == nil || strings.Contains(err.Error(), "sk-secret") {
		t.Errorf("error %v echoes the default", err)
	}
	_, _, err = expand("${-sk-secret}", nil)
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("error %v echoes the value", err)
	}
}

// TestLoadExpandsBeforeDecoding checks that references work in non-string
// fields and keep line numbers.
func TestLoadExpandsBeforeDecoding(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir+"/p.yaml", `providers:
  - id: ${PROVIDER_ID:-main}
    type: openai
    base_url: ${BASE}
    max_conns: ${CONNS}
    timeouts: {total: "${TOTAL:-30s}"}
models: [{id: m, targets: [{provider: main}]}]
orgs: [{id: o, models: ["*"]}]
keys: [{id: k, org: o, disabled: "${OFF:-false}", sha256: 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824}]
`)
	p, rep := mustLoad(t, dir, MapEnv(map[string]string{"BASE": "http://h:1", "CONNS": "7", "OFF": "true"}))
	pr := p.Providers[0]
	if pr.ID != "main" || pr.BaseURL != "http://h:1" || pr.MaxConns != 7 || pr.Timeouts.Total.D().String() != "30s" || !p.Keys[0].Disabled {
		t.Errorf("provider %+v key %+v", pr, p.Keys[0])
	}
	if len(rep.Warnings) != 0 {
		t.Errorf("warnings %q", warnings(rep))
	}
	_, rep, err := Load(dir, MapEnv(map[string]string{"BASE": "http://h:1", "CONNS": "seven"}))
	if err == nil || rep.Error() != dir+"/p.yaml:5: providers[0].max_conns: expected an integer, got \"seven\"" {
		t.Errorf("err = %v", err)
	}
}
