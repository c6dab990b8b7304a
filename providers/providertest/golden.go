package providertest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// GoldenJSON compares got with the golden file at path as JSON values (key
// order and white space do not matter, numbers compare by their text). got
// is a JSON text ([]byte, json.RawMessage, string) or any value to marshal.
// With -update it writes got, indented, instead.
func GoldenJSON(t testing.TB, path string, got any) {
	t.Helper()
	text, err := jsonText(got)
	if err != nil {
		t.Errorf("%s: got is not JSON: %v", path, err)
		return
	}
	if *update {
		var buf bytes.Buffer
		if err := json.Indent(&buf, text, "", "  "); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		buf.WriteByte('\n')
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s: golden file missing (run the test with -update to create it); got:\n%s", path, text)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if diff := JSONDiff(want, text); diff != "" {
		t.Errorf("%s: mismatch (run with -update to accept): %s\ngot:\n%s", path, diff, indent(text))
	}
}

// removeGolden deletes a golden file that no longer applies, under -update,
// and reports whether one exists otherwise.
func removeGolden(t testing.TB, path string) bool {
	t.Helper()
	_, err := os.Stat(path)
	if err != nil {
		return false
	}
	if *update {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		return false
	}
	return true
}

func jsonText(v any) ([]byte, error) {
	switch x := v.(type) {
	case []byte:
		if !json.Valid(x) {
			return nil, errors.New("invalid JSON text")
		}
		return x, nil
	case json.RawMessage:
		return jsonText([]byte(x))
	case string:
		return jsonText([]byte(x))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSpace(buf.Bytes()), nil
}

func indent(b []byte) string {
	var buf bytes.Buffer
	if json.Indent(&buf, b, "", "  ") != nil {
		return string(b)
	}
	return buf.String()
}

// JSONDiff compares two JSON texts as values and describes the first
// difference ("" when equal), naming its path.
func JSONDiff(want, got []byte) string {
	w, err := decodeJSON(want)
	if err != nil {
		return "want is not JSON: " + err.Error()
	}
	g, err := decodeJSON(got)
	if err != nil {
		return "got is not JSON: " + err.Error()
	}
	return diffValue("$", w, g)
}

func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data")
	}
	return v, nil
}

func diffValue(path string, w, g any) string {
	switch wv := w.(type) {
	case map[string]any:
		gv, ok := g.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: want an object, got %s", path, short(g))
		}
		keys := make([]string, 0, len(wv)+len(gv))
		for k := range wv {
			keys = append(keys, k)
		}
		for k := range gv {
			if _, ok := wv[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			a, inW := wv[k]
			b, inG := gv[k]
			switch {
			case !inG:
				return fmt.Sprintf("%s.%s: missing (want %s)", path, k, short(a))
			case !inW:
				return fmt.Sprintf("%s.%s: unexpected %s", path, k, short(b))
			}
			if d := diffValue(path+"."+k, a, b); d != "" {
				return d
			}
		}
		return ""
	case []any:
		gv, ok := g.([]any)
		if !ok {
			return fmt.Sprintf("%s: want an array, got %s", path, short(g))
		}
		for i := range min(len(wv), len(gv)) {
			if d := diffValue(fmt.Sprintf("%s[%d]", path, i), wv[i], gv[i]); d != "" {
				return d
			}
		}
		if len(wv) != len(gv) {
			return fmt.Sprintf("%s: want %d elements, got %d", path, len(wv), len(gv))
		}
		return ""
	case json.Number:
		if gv, ok := g.(json.Number); ok && wv != gv {
			a, errA := wv.Float64()
			b, errB := gv.Float64()
			if errA == nil && errB == nil && a == b {
				return ""
			}
		}
		if !reflect.DeepEqual(w, g) {
			return fmt.Sprintf("%s: want %s, got %s", path, short(w), short(g))
		}
		return ""
	default:
		if !reflect.DeepEqual(w, g) {
			return fmt.Sprintf("%s: want %s, got %s", path, short(w), short(g))
		}
		return ""
	}
}

func short(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	s := string(b)
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return strings.TrimSpace(s)
}
