package configs

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxSecretFileBytes caps a "file:" secret.
const maxSecretFileBytes = 1 << 20

// expandTree expands environment references in every scalar value under n
// (mapping keys excepted), in place, once per node: aliases are not
// followed, their targets are expanded where they are defined. References
// that produced "" are recorded in d.empty, malformed ones in d.envErr. It returns the number of nodes
// seen, which bounds the decoding work.
func (d *decoder) expandTree(n *yaml.Node) int {
	count := 1
	switch n.Kind {
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return count
		}
		v, uses, err := expand(n.Value, d.l.env)
		if err != nil {
			d.envErr[n] = err // reported where the value is decoded, with its path
			return count
		}
		n.Value = v
		if len(uses) > 0 {
			d.empty[n] = uses
		}
		for _, u := range uses {
			if u.unset {
				d.l.rep.warn(Pos{File: d.f.name, Line: n.Line}, "environment variable "+u.name+" is not set")
			}
		}
	case yaml.MappingNode:
		for i, c := range n.Content {
			if i%2 == 1 {
				count += d.expandTree(c)
			} else {
				count++
			}
		}
	case yaml.SequenceNode, yaml.DocumentNode:
		for _, c := range n.Content {
			count += d.expandTree(c)
		}
	}
	return count
}

// decoder decodes one file's node tree into a Policy, strictly, reporting
// every problem and recording where each field was written.
type decoder struct {
	l      *loader
	f      *srcFile
	empty  map[*yaml.Node][]varUse // references that expanded to ""
	envErr map[*yaml.Node]error    // malformed references
	active map[*yaml.Node]bool     // alias targets being decoded (cycle guard)
	budget int                     // nodes left to decode; aliases may multiply them
	spent  bool                    // the budget ran out (reported once)
}

func reflectValue(p *Policy) reflect.Value { return reflect.ValueOf(p).Elem() }

func (d *decoder) problem(line int, msg string) {
	d.l.rep.problem(Pos{File: d.f.name, Line: line}, msg)
}

// fail reports a problem with the value at path and marks it bad, so that
// the checks after decoding do not pile consequences ("is required") on it.
func (d *decoder) fail(path string, line int, msg string) {
	d.problem(line, msg)
	fi := d.f.fields[path]
	fi.bad = true
	d.f.fields[path] = fi
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// value decodes n into v; path names v in messages ("providers[0].id").
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	if d.spent {
		return
	}
	if d.budget--; d.budget < 0 {
		d.spent = true
		d.problem(n.Line, "too many nodes after alias expansion; simplify the anchors and aliases")
		return
	}
	line := n.Line // the use site, also for aliases
	if n.Kind == yaml.AliasNode {
		t := n.Alias
		if t == nil {
			d.fail(path, line, "alias *"+n.Value+" has no anchor")
			return
		}
		if d.active[t] {
			d.fail(path, line, "alias *"+n.Value+" refers to a node that contains it")
			return
		}
		d.active[t] = true
		defer delete(d.active, t)
		n = t // never an alias itself: YAML cannot anchor an alias
	}
	d.f.fields[path] = fieldInfo{line: line, null: isNull(n), empty: d.empty[n]}
	if err, bad := d.envErr[n]; bad {
		msg := err.Error()
		if path != "" {
			msg = path + ": " + msg
		}
		d.fail(path, line, msg)
		return
	}
	if isNull(n) {
		return // zero value
	}

	switch v.Type() {
	case reflect.TypeFor[Duration]():
		if s, ok := d.scalar(n, line, path, "a duration such as \"5s\""); ok {
			dur, err := parseDuration(s)
			switch {
			case err != nil:
				d.fail(path, line, path+": "+err.Error())
			case dur < 0:
				d.fail(path, line, fmt.Sprintf("%s: must not be negative (got %q)", path, s))
			default:
				v.SetInt(int64(dur))
			}
		}
		return
	case reflect.TypeFor[ByteSize]():
		if s, ok := d.scalar(n, line, path, "a size such as \"8MiB\""); ok {
			b, err := parseByteSize(s)
			switch {
			case err != nil:
				d.fail(path, line, path+": "+err.Error())
			case b < 0:
				d.fail(path, line, fmt.Sprintf("%s: must not be negative (got %q)", path, s))
			default:
				v.SetInt(int64(b))
			}
		}
		return
	case reflect.TypeFor[Limit]():
		if n.Kind == yaml.ScalarNode {
			s := strings.TrimSpace(n.Value)
			if s == "unlimited" {
				v.Set(reflect.ValueOf(Limit{Max: Unlimited}))
				return
			}
			i, err := strconv.ParseInt(s, 10, 64)
			if err != nil || i < 0 {
				d.fail(path, line, fmt.Sprintf("%s: expected a non-negative integer, \"unlimited\" or {max, burst, shadow}, got %q", path, clip(s, 40)))
				return
			}
			if i == 0 {
				i = Zero
			}
			v.Set(reflect.ValueOf(Limit{Max: i}))
			return
		}
		if d.mapping(n, v, path, line) {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == "max" && strings.TrimSpace(n.Content[i+1].Value) == "0" {
					v.FieldByName("Max").SetInt(Zero)
				}
			}
		}
		return
	case reflect.TypeFor[Secret]():
		if n.Kind != yaml.ScalarNode {
			d.fail(path, line, path+": expected a string, got "+kindWord(n))
			return
		}
		v.SetString(d.secret(n.Value, line, path))
		return
	}

	switch v.Kind() {
	case reflect.Struct:
		d.mapping(n, v, path, line)
	case reflect.Pointer:
		e := reflect.New(v.Type().Elem())
		if d.mapping(n, e.Elem(), path, line) {
			v.Set(e)
		}
	case reflect.Slice:
		d.sequence(n, v, path, line)
	case reflect.String:
		if s, ok := d.scalar(n, line, path, "a string"); ok {
			v.SetString(s)
		}
	case reflect.Int, reflect.Int64:
		if s, ok := d.scalar(n, line, path, "an integer"); ok {
			i, err := strconv.ParseInt(strings.TrimSpace(s), 10, 0)
			if err != nil {
				d.fail(path, line, fmt.Sprintf("%s: expected an integer, got %q", path, clip(s, 40)))
				return
			}
			v.SetInt(i)
		}
	case reflect.Float64:
		if s, ok := d.scalar(n, line, path, "a number"); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				d.fail(path, line, fmt.Sprintf("%s: expected a number, got %q", path, clip(s, 40)))
				return
			}
			v.SetFloat(f)
		}
	case reflect.Bool:
		if s, ok := d.scalar(n, line, path, "a boolean"); ok {
			switch strings.ToLower(strings.TrimSpace(s)) {
			case "true", "yes", "on":
				v.SetBool(true)
			case "false", "no", "off":
				v.SetBool(false)
			default:
				d.fail(path, line, fmt.Sprintf("%s: expected true or false, got %q", path, clip(s, 40)))
			}
		}
	default:
		panic("configs: no decoder for " + v.Type().String()) // a schema bug, not an input error
	}
}

// scalar returns n's text, or reports that path wanted a scalar.
func (d *decoder) scalar(n *yaml.Node, line int, path, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.fail(path, line, path+": expected "+want+", got "+kindWord(n))
		return "", false
	}
	return n.Value, true
}

func kindWord(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a single value"
	}
	return "an unexpected YAML node"
}

// secret resolves a "file:" reference, or returns s.
func (d *decoder) secret(s string, line int, path string) string {
	name, ok := strings.CutPrefix(s, "file:")
	if !ok {
		return s
	}
	name = strings.TrimSpace(name)
	if name == "" {
		d.fail(path, line, path+": \"file:\" names no file")
		return ""
	}
	full := name
	if !filepath.IsAbs(full) {
		full = filepath.Join(filepath.Dir(d.f.name), name)
	}
	data, err := readSecretFile(full)
	if err != nil {
		d.fail(path, line, fmt.Sprintf("%s: cannot read secret file %q: %v", path, name, err))
		return ""
	}
	return strings.TrimRight(string(data), "\r\n")
}

func readSecretFile(name string) ([]byte, error) {
	st, err := os.Stat(name) // no Open before this: opening a FIFO could block
	if err != nil {
		return nil, unwrapPathError(err)
	}
	if !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, unwrapPathError(err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFileBytes+1))
	if err != nil {
		return nil, unwrapPathError(err)
	}
	if len(data) > maxSecretFileBytes {
		return nil, errors.New("larger than 1 MiB")
	}
	return data, nil
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// sequence decodes a YAML list into the slice v.
func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string, line int) {
	if n.Kind != yaml.SequenceNode {
		d.fail(path, line, path+": expected a list, got "+kindWord(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), 0, len(n.Content))
	for i, item := range n.Content {
		ipath := path + "[" + strconv.Itoa(i) + "]"
		e := reflect.New(v.Type().Elem()).Elem()
		if isNull(item) || item.Kind == yaml.AliasNode && item.Alias != nil && isNull(item.Alias) {
			// Kept as a zero element marked bad: indices stay those of the file.
			d.f.fields[ipath] = fieldInfo{line: item.Line, null: true}
			d.fail(ipath, item.Line, ipath+": empty list item")
		} else {
			d.value(item, e, ipath)
		}
		if d.spent {
			break // the rest would be zero values, and noise
		}
		s = reflect.Append(s, e)
	}
	v.Set(s)
}

// mapping decodes a YAML mapping into the struct v, strictly. It returns
// false if n is not a mapping.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string, line int) bool {
	t := v.Type()
	what := structLabel(t)
	fields := map[string]int{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("yaml")
		if tag == "-" {
			if sf.Type == reflect.TypeFor[Pos]() {
				v.Field(i).Set(reflect.ValueOf(Pos{File: d.f.name, Line: line}))
			}
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		fields[name] = i
		names = append(names, name)
	}
	if n.Kind != yaml.MappingNode {
		where := path
		if where == "" {
			where = "top level"
		}
		d.fail(path, line, where+": expected a mapping ("+what+"), got "+kindWord(n))
		return false
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.AliasNode && k.Alias != nil {
			k = k.Alias
		}
		if k.Kind != yaml.ScalarNode {
			d.problem(n.Content[i].Line, "field names in "+what+" must be plain strings, got "+kindWord(k))
			continue
		}
		if k.Tag == "!!merge" {
			d.problem(n.Content[i].Line, "merge keys (<<) are not supported in "+what+"; alias a whole value instead")
			continue
		}
		name := k.Value
		if first, dup := seen[name]; dup {
			d.problem(n.Content[i].Line, fmt.Sprintf("field %q is set twice in %s (first at line %d)", name, what, first))
			continue
		}
		seen[name] = n.Content[i].Line
		fi, ok := fields[name]
		if !ok {
			d.problem(n.Content[i].Line, fmt.Sprintf("unknown field %q in %s%s", clip(name, 64), what, suggest(name, names, path == "")))
			continue
		}
		d.value(val, v.Field(fi), join(path, name))
	}
	return true
}

// structLabel names a schema struct in messages ("unknown field ... in provider").
func structLabel(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[Policy]():
		return "policy file"
	case reflect.TypeFor[Server]():
		return "server"
	case reflect.TypeFor[Provider]():
		return "provider"
	case reflect.TypeFor[Timeouts]():
		return "timeouts"
	case reflect.TypeFor[Mock]():
		return "mock"
	case reflect.TypeFor[Model]():
		return "model"
	case reflect.TypeFor[TargetRef]():
		return "target"
	case reflect.TypeFor[Org]():
		return "org"
	case reflect.TypeFor[Key]():
		return "key"
	}
	return strings.ToLower(t.Name())
}

// suggest returns a " (did you mean ...?)" hint for an unknown field name,
// or "".
func suggest(name string, known []string, top bool) string {
	if top {
		switch strings.ToLower(name) {
		case "listen", "listeners", "listener", "addr", "address", "admin":
			return " (listeners are bootstrap settings: flags or AIGW_* env, not policy files)"
		}
	}
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "_", "") }
	best, bestDist := "", 3
	for _, k := range known {
		if norm(k) == norm(name) {
			return fmt.Sprintf(" (did you mean %q?)", k)
		}
		if dist := editDistance(name, k); dist < bestDist && dist < len(k) {
			best, bestDist = k, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance between a and b (bytes), capped
// at 3 for long inputs: only small distances matter for hints.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 3
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
