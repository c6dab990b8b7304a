package compress

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden testdata/<strategy>/*.out.json files")

// caseOpts is a golden case's optional <name>.opts.json: the limit and the
// options besides the one strategy the directory names.
type caseOpts struct {
	Model                string `json:"model"`
	Limit                int    `json:"limit"`
	PreservePrefix       bool   `json:"preserve_prefix"`
	PrefixMessages       int    `json:"prefix_messages"`
	CodeWhitespace       bool   `json:"code_whitespace"`
	MaxToolResultTokens  int    `json:"max_tool_result_tokens"`
	ToolResultTailTokens int    `json:"tool_result_tail_tokens"`
	KeepLastTurns        int    `json:"keep_last_turns"`
}

func readOpts(t *testing.T, path string) caseOpts {
	t.Helper()
	o := caseOpts{Model: "gpt-4o"}
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return o
	}
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&o); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return o
}

// TestGolden runs each strategy alone over testdata/<strategy>/*.in.json
// and compares the request with <name>.out.json (go test -run TestGolden
// -update rewrites them). Every case must save tokens with its strategy,
// keep the last user message byte-identical and tool calls paired, and fit
// its limit.
func TestGolden(t *testing.T) {
	for _, s := range Strategies() {
		ins, err := filepath.Glob(filepath.Join("testdata", string(s), "*.in.json"))
		if err != nil {
			t.Fatal(err)
		}
		if len(ins) == 0 {
			t.Errorf("no golden cases for %s", s)
		}
		for _, in := range ins {
			name := strings.TrimSuffix(filepath.Base(in), ".in.json")
			t.Run(string(s)+"/"+name, func(t *testing.T) {
				base := strings.TrimSuffix(in, ".in.json")
				co := readOpts(t, base+".opts.json")
				cp := mustNew(t, Options{Enabled: []Strategy{s}, PreservePrefix: co.PreservePrefix, PrefixMessages: co.PrefixMessages,
					CodeWhitespace: co.CodeWhitespace, MaxToolResultTokens: co.MaxToolResultTokens,
					ToolResultTailTokens: co.ToolResultTailTokens, KeepLastTurns: co.KeepLastTurns}, realCounter())
				r := load(t, in)
				last := lastUser(r)
				res, err := cp.Compress(co.Model, r, co.Limit)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%d -> %d tokens, saved %v, omitted %d", res.Before, res.After, res.Saved, res.Omitted)
				if res.Saved[s] <= 0 {
					t.Errorf("%s saved nothing", s)
				}
				if got := lastUser(r); !bytes.Equal(got, last) {
					t.Errorf("last user message changed:\n%s\nwas\n%s", got, last)
				}
				if err := checkPairing(r); err != nil {
					t.Error(err)
				}
				if n := realCounter().CountRequest(co.Model, r); n != res.After || (co.Limit > 0 && n > co.Limit) {
					t.Errorf("request counts %d, After %d, limit %d", n, res.After, co.Limit)
				}
				got := pretty(t, encode(r))
				out := base + ".out.json"
				if *update {
					if err := os.WriteFile(out, got, 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(out)
				if err != nil {
					t.Fatalf("%v (run go test -run TestGolden -update)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from the compressed request:\n%s", out, got)
				}
			})
		}
	}
}
