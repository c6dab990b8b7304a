package configs

import (
	"errors"
	"testing"
)

// TestSyntaxErrorLines checks that YAML syntax errors point at the line
// holding the fault, which yaml.v3's own messages often do not.
func TestSyntaxErrorLines(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		line      int
	}{
		{"flow list not closed", "a: 1\nb: [1, 2\nc: 3\n", 2},
		{"bad indentation", "a:\n  - x\n  y: 2\n", 3},
		{"mapping in scalar context", "a: 1\n  b: 2\n", 2},
		{"unterminated quote", "a: 1\nb: \"open\nc: 2\n", 2},
		{"tab indentation", "a:\n\tb: 1\n", 2},
		{"unknown anchor", "a: 1\nb: 2\nc: *nope\n", 3},
		{"control character", "a: 1\nb: x\x01\n", 2},
		{"invalid token on first line", "a: b: c\n", 1},
		{"reserved indicator", "a: 1\nb: 2\nc: @x\n", 3},
		{"no trailing newline", "a: 1\nb: [", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseDocs([]byte(tc.src), 2)
			if err == nil {
				t.Fatal("no error from yaml.v3")
			}
			line, msg := syntaxErrorLine([]byte(tc.src), err)
			if line != tc.line || msg == "" {
				t.Errorf("line %d (%q), want %d; yaml.v3 said %q", line, msg, tc.line, err)
			}
		})
	}
}

func TestLoadReportsSyntaxErrorOnce(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir+"/p.yaml", "providers:\n  - id: x\n    type: [\n")
	_, _, err := Load(dir, nil)
	var rep *Report
	if !errors.As(err, &rep) || len(rep.Problems) != 1 || rep.Problems[0].Pos.Line == 0 {
		t.Fatalf("err = %v", err)
	}
}
