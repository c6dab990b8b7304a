// Package accounting holds what the gateway knows about money and usage
// once a request has finished: token counting (accounting/tokens), the price
// table and cost arithmetic (accounting/prices), and the durable usage ledger
// with its stores (accounting/ledger).
//
// This package itself defines the units those share: MicroUSD, an exact
// integer amount of US dollars, and Rate, an exact decimal exchange rate into
// an organisation's display currency. Nothing here uses floating point, so
// sums never drift.
//
// Dependency rule: accounting and its sub-packages import the standard
// library, providers/llm and their named third-party libraries (tiktoken,
// YAML, SQLite, pgx) only; never proxy, configs or policy.
package accounting

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// MicroUSD is an amount of US dollars in millionths of a dollar. One cent is
// 10_000; int64 holds amounts up to about 9.2 trillion dollars.
type MicroUSD int64

// String formats m as dollars with six decimals, for example "0.001250".
func (m MicroUSD) String() string { return formatMicros(int64(m)) }

// formatMicros formats a signed amount of millionths as a decimal number
// with six fractional digits.
func formatMicros(v int64) string {
	neg := v < 0
	u := uint64(v)
	if neg {
		u = uint64(-v)
	}
	whole := strconv.FormatUint(u/1_000_000, 10)
	frac := strconv.FormatUint(u%1_000_000, 10)
	s := whole + "." + strings.Repeat("0", 6-len(frac)) + frac
	if neg {
		s = "-" + s
	}
	return s
}

// ParseMicros parses a non-negative decimal number with at most six
// fractional digits ("2.50", "0.075", "10") into millionths of its unit. It is
// exact: no floating point is involved. More than six fractional digits is an
// error rather than a silent rounding, so a price table cannot claim more
// precision than the gateway bills at.
func ParseMicros(s string) (int64, error) {
	orig := s
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty number")
	}
	if s[0] == '+' || s[0] == '-' {
		return 0, fmt.Errorf("%q: sign not allowed", orig)
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" && (!hasDot || frac == "") {
		return 0, fmt.Errorf("%q: not a decimal number", orig)
	}
	if whole == "" {
		whole = "0"
	}
	if len(frac) > 6 {
		// Trailing zeros beyond the sixth digit carry no precision.
		trimmed := strings.TrimRight(frac[6:], "0")
		if trimmed != "" {
			return 0, fmt.Errorf("%q: more than six decimal places", orig)
		}
		frac = frac[:6]
	}
	for _, part := range []string{whole, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return 0, fmt.Errorf("%q: not a decimal number", orig)
			}
		}
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > (1<<63-1)/1_000_000-1 {
		return 0, fmt.Errorf("%q: out of range", orig)
	}
	f := int64(0)
	if frac != "" {
		f, _ = strconv.ParseInt(frac+strings.Repeat("0", 6-len(frac)), 10, 64)
	}
	return w*1_000_000 + f, nil
}

// Rate converts US dollars into a display currency at a fixed, configured
// rate ("1 USD = 0.79 GBP"). It is stored as an exact decimal in millionths
// of the display currency per dollar. The zero Rate is invalid; use USD for
// the identity.
type Rate struct {
	// Currency is the ISO 4217 code of the display currency, e.g. "GBP".
	Currency string
	// micros is display-currency millionths per 1 USD.
	micros int64
}

// USD is the identity rate.
var USD = Rate{Currency: "USD", micros: 1_000_000}

// ParseRate builds a Rate from a currency code and a decimal rate with at
// most six fractional digits, for example ParseRate("GBP", "0.79").
func ParseRate(currency, perUSD string) (Rate, error) {
	if len(currency) != 3 || strings.ToUpper(currency) != currency {
		return Rate{}, fmt.Errorf("currency %q: want a three-letter ISO 4217 code in capitals", currency)
	}
	m, err := ParseMicros(perUSD)
	if err != nil {
		return Rate{}, fmt.Errorf("rate for %s: %w", currency, err)
	}
	if m <= 0 {
		return Rate{}, fmt.Errorf("rate for %s must be positive", currency)
	}
	return Rate{Currency: currency, micros: m}, nil
}

// Valid reports whether r was built by ParseRate (or is USD).
func (r Rate) Valid() bool { return r.micros > 0 && r.Currency != "" }

// String formats the rate as "1 USD = 0.790000 GBP".
func (r Rate) String() string {
	return "1 USD = " + formatMicros(r.micros) + " " + r.Currency
}

// Convert returns amount, given in MicroUSD, in millionths of the display
// currency. The result is rounded half away from zero at the millionth,
// once; it saturates at the int64 limits rather than overflowing.
func (r Rate) Convert(amount MicroUSD) int64 {
	if r.micros == 1_000_000 {
		return int64(amount)
	}
	neg := amount < 0
	a := uint64(amount)
	if neg {
		a = uint64(-amount)
	}
	hi, lo := bits.Mul64(a, uint64(r.micros))
	// Divide the 128-bit product by 1e6 with rounding half up.
	lo2, carry := bits.Add64(lo, 500_000, 0)
	hi += carry
	if hi >= 1_000_000 {
		if neg {
			return -1 << 63
		}
		return 1<<63 - 1
	}
	q, _ := bits.Div64(hi, lo2, 1_000_000)
	if q > 1<<63-1 {
		q = 1<<63 - 1
	}
	if neg {
		return -int64(q)
	}
	return int64(q)
}
