package configs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestSecretRedaction(t *testing.T) {
	const clear = "sk-very-secret"
	s := Secret(clear)
	p := Provider{ID: "p", APIKey: s}
	outs := map[string]string{
		"%v":         fmt.Sprintf("%v", s),
		"%s":         fmt.Sprintf("%s", s),
		"%q":         fmt.Sprintf("%q", s),
		"%x":         fmt.Sprintf("%x", s),
		"%#v":        fmt.Sprintf("%#v", s),
		"%+v struct": fmt.Sprintf("%+v", p),
		"%#v struct": fmt.Sprintf("%#v", p),
		"%v ptr":     fmt.Sprintf("%v", &p),
		"String":     s.String(),
	}
	j, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	outs["json"] = string(j)
	y, err := yaml.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	outs["yaml"] = string(y)
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "key", s, "provider", p)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "key", s)
	outs["slog"] = logs.String()

	for name, out := range outs {
		if strings.Contains(out, clear) || strings.Contains(out, fmt.Sprintf("%x", clear)) {
			t.Errorf("%s leaks the secret: %s", name, out)
		}
		if !strings.Contains(out, "[redacted]") && out != fmt.Sprintf("%x", "[redacted]") {
			t.Errorf("%s does not say [redacted]: %s", name, out)
		}
	}
	if s.Value() != clear {
		t.Errorf("Value() = %q", s.Value())
	}
	if !strings.Contains(outs["json"], `"APIKey":"[redacted]"`) {
		t.Errorf("json = %s", outs["json"])
	}
	if !strings.Contains(outs["yaml"], "api_key: '[redacted]'") {
		t.Errorf("yaml = %s", outs["yaml"])
	}

	var empty Secret
	if got := fmt.Sprintf("%v|%s", empty, empty); got != "|" {
		t.Errorf("empty secret prints %q, want empty", got)
	}
	if b, _ := json.Marshal(empty); string(b) != `""` {
		t.Errorf("empty secret json = %s", b)
	}
}

func TestByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ByteSize
		err  bool
	}{
		{in: "0", want: 0},
		{in: "1048576", want: 1 << 20},
		{in: "512KiB", want: 512 << 10},
		{in: "8MiB", want: 8 << 20},
		{in: "8 MiB", want: 8 << 20},
		{in: "8mib", want: 8 << 20},
		{in: "1MB", want: 1000000},
		{in: "2kb", want: 2000},
		{in: "1GiB", want: 1 << 30},
		{in: "3GB", want: 3e9},
		{in: "1TiB", want: 1 << 40},
		{in: "10B", want: 10},
		{in: "-1", want: -1}, // parsed; Load rejects negatives
		{in: "1.5MiB", err: true},
		{in: "MiB", err: true},
		{in: "", err: true},
		{in: "8 mebibytes", err: true},
		{in: "99999999999TiB", err: true},
		{in: "99999999999999999999", err: true},
	} {
		var b ByteSize
		err := b.UnmarshalText([]byte(tc.in))
		if (err != nil) != tc.err || err == nil && b != tc.want {
			t.Errorf("ByteSize(%q) = %d, %v; want %d, error %v", tc.in, b, err, tc.want, tc.err)
		}
	}
	for b, want := range map[ByteSize]string{0: "0", 1000: "1000", 8 << 20: "8MiB", 512 << 10: "512KiB", 3 << 30: "3GiB", 1<<20 + 1: "1048577"} {
		if got := b.String(); got != want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(b), got, want)
		}
		var back ByteSize
		if err := back.UnmarshalText([]byte(b.String())); err != nil || back != b {
			t.Errorf("round trip of %d: %d, %v", int64(b), back, err)
		}
	}
}

func TestDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"5s": 5 * time.Second, "150ms": 150 * time.Millisecond, "2m": 2 * time.Minute, "0": 0, "1h30m": 90 * time.Minute} {
		var d Duration
		if err := d.UnmarshalText([]byte(in)); err != nil || d.D() != want {
			t.Errorf("Duration(%q) = %v, %v; want %v", in, d.D(), err, want)
		}
	}
	for _, in := range []string{"5", "soon", "", "1.5"} {
		var d Duration
		if err := d.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("Duration(%q) = %v, want an error", in, d)
		}
	}
	if b, _ := Duration(90 * time.Second).MarshalText(); string(b) != "1m30s" {
		t.Errorf("MarshalText = %s", b)
	}
}

func TestPosString(t *testing.T) {
	if got := (Pos{"a.yaml", 3}).String(); got != "a.yaml:3" {
		t.Errorf("got %q", got)
	}
	if got := (Pos{"dir", 0}).String(); got != "dir" {
		t.Errorf("got %q", got)
	}
}
