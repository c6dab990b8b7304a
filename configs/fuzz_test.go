package configs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad writes arbitrary bytes to a policy file and loads it: Load must
// not panic, and its results must follow its contract.
func FuzzLoad(f *testing.F) {
	for _, dir := range []string{"testdata/good", "testdata/bad", "examples"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, name := range files {
			if b, err := os.ReadFile(name); err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte("a: &a [*a, *a]\nproviders: *a\n"))
	f.Add([]byte("providers: [{id: p, type: mock, api_key: \"file:/dev/zero\"}]\n"))
	f.Add([]byte("\xef\xbb\xbfproviders: []\n\x00"))

	env := MapEnv(map[string]string{"A": "x", "OPENAI_API_KEY": "sk-test"})
	// One file, rewritten for each input: a fuzz worker runs its inputs one
	// at a time, and a directory per input would make file system calls
	// the bulk of the work.
	path := filepath.Join(f.TempDir(), "p.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		p, rep, err := Load(path, env)
		switch {
		case err == nil:
			if p == nil || rep == nil || len(rep.Problems) != 0 {
				t.Fatalf("success without policy or with problems: %v %v", p, rep)
			}
		case rep != nil:
			if p != nil || len(rep.Problems) == 0 || err.Error() != rep.Error() {
				t.Fatalf("report contract broken: p=%v problems=%d", p, len(rep.Problems))
			}
			for _, pr := range rep.Problems {
				if !strings.HasPrefix(pr.Pos.File, path) || pr.Pos.Line < 0 || pr.Msg == "" {
					t.Fatalf("bad problem %q", pr)
				}
			}
		default:
			t.Fatalf("I/O error on a readable file: %v", err)
		}
	})
}
