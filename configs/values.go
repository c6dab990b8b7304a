package configs

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"
)

// Pos is a position in a policy file.
type Pos struct {
	File string // as given to Load, joined with the file name for directories
	Line int    // 1-based; 0 when the position is the file (or directory) as a whole
}

// String returns "file:line", or "file" when Line is 0.
func (p Pos) String() string {
	if p.Line <= 0 {
		return p.File
	}
	return p.File + ":" + strconv.Itoa(p.Line)
}

// Duration is a time.Duration written in YAML as a Go duration string such
// as "5s", "150ms" or "2m". "0" is accepted; a number without unit is not.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d like time.Duration does ("1m30s").
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with the same syntax
// Load accepts (negative durations included; Load rejects those itself).
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := parseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (want a number with a unit, such as \"5s\", \"150ms\" or \"2m\")", s)
	}
	return v, nil
}

// ByteSize is a number of bytes. In YAML it is an integer, or an integer
// followed by a unit: B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB,
// TiB (powers of 1024); units are case-insensitive and may be preceded by a
// space ("512KiB", "8 MiB", "1MB").
type ByteSize int64

// String returns the size with the largest binary unit that divides it
// exactly ("8MiB"), or in bytes ("1000").
func (b ByteSize) String() string {
	units := []struct {
		name string
		size ByteSize
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}
	for _, u := range units {
		if b != 0 && b%u.size == 0 {
			return strconv.FormatInt(int64(b/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// MarshalText implements encoding.TextMarshaler.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with the syntax
// described on ByteSize.
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := parseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

func parseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	bad := fmt.Errorf("invalid size %q (want bytes as an integer, or a size such as \"512KiB\", \"8MiB\", \"1MB\")", s)
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	num, unit := s[:i], strings.TrimSpace(s[i:])
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			return 0, fmt.Errorf("size %q is too large", s)
		}
		return 0, bad
	}
	var mult int64
	switch strings.ToLower(unit) {
	case "", "b":
		mult = 1
	case "kb":
		mult = 1e3
	case "mb":
		mult = 1e6
	case "gb":
		mult = 1e9
	case "tb":
		mult = 1e12
	case "kib":
		mult = 1 << 10
	case "mib":
		mult = 1 << 20
	case "gib":
		mult = 1 << 30
	case "tib":
		mult = 1 << 40
	default:
		return 0, bad
	}
	if n > math.MaxInt64/mult || n < math.MinInt64/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return ByteSize(n * mult), nil
}

// redacted is what a non-empty Secret shows instead of its value.
const redacted = "[redacted]"

// Secret is a resolved secret value (an API key). Every way of printing or
// encoding it that goes through the standard interfaces (fmt verbs
// including %#v, encoding.TextMarshaler as used by encoding/json and
// yaml.v3, slog.LogValuer) shows "[redacted]", or "" when the secret is
// empty. Value returns the clear text; call it only where the secret is
// actually sent.
type Secret string

// Value returns the secret in clear.
func (s Secret) Value() string { return string(s) }

// String returns "[redacted]", or "" for an empty secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString implements fmt.GoStringer so that %#v is redacted too.
func (s Secret) GoString() string { return "configs.Secret(" + strconv.Quote(s.String()) + ")" }

// MarshalText implements encoding.TextMarshaler; the text is redacted.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue implements slog.LogValuer; the value is redacted.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }
