package configs

import (
	"go/build"
	"strings"
	"testing"
)

// TestNoRuntimeDependencies keeps configs free of aigw's runtime packages,
// so that tools can load policies without them.
func TestNoRuntimeDependencies(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if strings.HasPrefix(imp, "github.com/aigw/aigw/") {
			t.Errorf("configs imports %s", imp)
		}
		if strings.Contains(imp, ".") && imp != "gopkg.in/yaml.v3" {
			t.Errorf("configs imports third-party package %s", imp)
		}
	}
}
