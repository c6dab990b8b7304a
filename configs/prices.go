package configs

import _ "embed"

//go:embed prices.yaml
var defaultPrices []byte

// DefaultPrices returns the shipped price table (configs/prices.yaml, in
// the format accounting/prices reads), compiled into the binary so that a
// gateway needs no file at run time. Each call returns a fresh copy.
func DefaultPrices() []byte { return append([]byte(nil), defaultPrices...) }
