package configs

import (
	"cmp"
	"slices"
	"strings"
)

// Problem is one finding of Load, at a position in a policy file.
type Problem struct {
	Pos Pos
	Msg string
}

// String returns "file:line: message".
func (p Problem) String() string { return p.Pos.String() + ": " + p.Msg }

// Report holds everything Load found. Problems make the policy unusable;
// Warnings do not (an unset environment variable, for instance, is legal
// until a required field ends up empty because of it). Load returns both
// lists sorted by file, then line, findings on the same line in the order
// they were found.
//
// A *Report is an error: Error lists the Problems, one "file:line: message"
// per line.
type Report struct {
	Problems []Problem
	Warnings []Problem
}

// Error returns the problems, one per line, without a trailing newline.
func (r *Report) Error() string {
	var b strings.Builder
	for i, p := range r.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.String())
	}
	return b.String()
}

func (r *Report) problem(pos Pos, msg string) {
	r.Problems = append(r.Problems, Problem{Pos: pos, Msg: msg})
}

func (r *Report) warn(pos Pos, msg string) {
	r.Warnings = append(r.Warnings, Problem{Pos: pos, Msg: msg})
}

// finish drops repeated findings (a node decoded again through an alias
// repeats its problems) and sorts.
func (r *Report) finish() {
	r.Problems = dedupe(r.Problems)
	r.Warnings = dedupe(r.Warnings)
	byPos := func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Pos.File, b.Pos.File), cmp.Compare(a.Pos.Line, b.Pos.Line))
	}
	slices.SortStableFunc(r.Problems, byPos)
	slices.SortStableFunc(r.Warnings, byPos)
}

func dedupe(ps []Problem) []Problem {
	seen := make(map[Problem]bool, len(ps))
	out := ps[:0]
	for _, p := range ps {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}
