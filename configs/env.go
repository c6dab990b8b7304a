package configs

import (
	"fmt"
	"strings"
)

// Env looks up an environment variable, reporting whether it is set. Pass
// os.LookupEnv in production; tests pass MapEnv. A nil Env is an empty
// environment.
type Env func(key string) (value string, ok bool)

// MapEnv returns an Env that reads m (nil m is an empty environment). m
// must not be modified while the Env is in use.
func MapEnv(m map[string]string) Env {
	return func(key string) (string, bool) {
		v, ok := m[key]
		return v, ok
	}
}

// varUse records a reference without default that expanded to "".
type varUse struct {
	name  string
	unset bool // not set at all (else set to "")
}

// expand replaces environment references in s:
//
//	${NAME}          the value of NAME; "" when NAME is unset or empty
//	${NAME:-default} the value of NAME, or default when NAME is unset or empty
//	$$               a literal "$" (so "$${NAME}" is the literal text "${NAME}")
//
// NAME is [A-Za-z_][A-Za-z0-9_]*; default is any text without "}" and is
// not expanded again (no nesting). Any other "$" is literal ("costs $5").
// A string without "$" is returned as is.
// empty lists the references without default that produced "", so that
// callers can warn about unset variables and explain empty fields.
func expand(s string, env Env) (out string, empty []varUse, err error) {
	if !strings.Contains(s, "$") {
		return s, nil, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "$$") {
			b.WriteByte('$')
			i += 2
			continue
		}
		if !strings.HasPrefix(s[i:], "${") {
			b.WriteByte(s[i])
			i++
			continue
		}
		j := i + 2
		for j < len(s) && isNameByte(s[j], j == i+2) {
			j++
		}
		name := s[i+2 : j]
		if name == "" {
			return s, nil, fmt.Errorf("invalid environment reference \"${%s\": want ${NAME} or ${NAME:-default} (write $$ for a literal $)", clip(s[j:], 1))
		}
		var def string
		hasDef := false
		switch {
		case strings.HasPrefix(s[j:], "}"):
			j++
		case strings.HasPrefix(s[j:], ":-"):
			end := strings.IndexByte(s[j+2:], '}')
			if end < 0 {
				return s, nil, fmt.Errorf("unterminated environment reference \"${%s:-...\": missing \"}\"", name)
			}
			def, hasDef = s[j+2:j+2+end], true
			j += 2 + end + 1
		case j == len(s):
			return s, nil, fmt.Errorf("unterminated environment reference \"${%s\": missing \"}\"", name)
		default:
			return s, nil, fmt.Errorf("invalid environment reference \"${%s%s\": want ${NAME} or ${NAME:-default}", name, clip(s[j:], 1))
		}
		var v string
		ok := false
		if env != nil {
			v, ok = env(name)
		}
		switch {
		case v != "":
			b.WriteString(v)
		case hasDef:
			b.WriteString(def)
		default:
			empty = append(empty, varUse{name: name, unset: !ok})
		}
		i = j
	}
	return b.String(), empty, nil
}

func isNameByte(c byte, first bool) bool {
	switch {
	case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		return true
	case c >= '0' && c <= '9':
		return !first
	}
	return false
}

// clip returns the first n runes of s, marking a cut with "...". Messages
// echo as little of a value as possible: it may be a secret.
func clip(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i] + "..."
		}
		n--
	}
	return s
}
