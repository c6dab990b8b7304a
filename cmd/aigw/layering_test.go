package main

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/aigw/aigw"

// TestLayering keeps DESIGN.md's dependency direction true: providers/llm
// and providers/sse use the standard library only, as do the leaf helpers
// under internal/; adapters use llm and sse and never fasthttp; accounting
// sees llm and internal/; policy sees policy, llm, accounting and internal/; configs sees no runtime package; only proxy and cmd see all.
func TestLayering(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, module+"/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	adapters := []string{"providers/openai", "providers/anthropic", "providers/gemini", "providers/mock"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module+"/")
		for _, imp := range fields[1:] {
			internal := strings.HasPrefix(imp, module+"/")
			dep := strings.TrimPrefix(imp, module+"/")
			thirdParty := !internal && strings.Contains(strings.SplitN(imp, "/", 2)[0], ".")
			var bad bool
			switch {
			case pkg == "providers/llm" || pkg == "providers/sse" || strings.HasPrefix(pkg, "internal/"):
				bad = internal || thirdParty
			case inList(pkg, adapters):
				bad = (internal && dep != "providers/llm" && dep != "providers/sse") || thirdParty
			case pkg == "providers/transport":
				bad = internal && dep != "providers/llm"
			case strings.HasPrefix(pkg, "accounting"):
				bad = internal && dep != "providers/llm" && !strings.HasPrefix(dep, "accounting") && !strings.HasPrefix(dep, "internal/")
			case strings.HasPrefix(pkg, "policy"):
				bad = internal && dep != "providers/llm" && !strings.HasPrefix(dep, "policy") && !strings.HasPrefix(dep, "accounting") &&
					!strings.HasPrefix(dep, "internal/")
			case strings.HasPrefix(pkg, "configs"):
				bad = internal && !strings.HasPrefix(dep, "configs")
			case pkg == "proxy":
				bad = internal && strings.HasPrefix(dep, "cmd")
			}
			if bad {
				t.Errorf("%s must not import %s", pkg, imp)
			}
		}
	}
}

func inList(s string, list []string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
