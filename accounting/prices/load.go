package prices

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// The price file format (configs/prices.yaml):
//
//	sources:                      # where each provider's figures come from
//	  - provider: openai
//	    url: https://platform.openai.com/docs/pricing
//	    as_of: "2025-06-10"       # the date the figures were read
//	prices:
//	  - provider: openai
//	    model: gpt-4o
//	    aliases: [chatgpt-4o-latest]   # optional, same rates
//	    input: 2.50               # USD per million tokens, at most 6 decimals
//	    cached_input: 1.25        # optional; defaults to input
//	    cache_write: 2.50         # optional; defaults to input
//	    output: 10.00
//	    long_context:             # optional tier for long prompts
//	      above_prompt_tokens: 200000
//	      input: 2.50
//	      output: 15.00
//
// Keys are checked strictly: an unknown key is an error, reported with its
// line, as is a price with more than six decimals.

type fileYAML struct {
	Sources []sourceYAML `yaml:"sources"`
	Prices  []entryYAML  `yaml:"prices"`
}

type sourceYAML struct {
	Provider string `yaml:"provider"`
	URL      string `yaml:"url"`
	AsOf     string `yaml:"as_of"`
	Note     string `yaml:"note"`
	line     int
}

type ratesYAML struct {
	Input       *decimal `yaml:"input"`
	Output      *decimal `yaml:"output"`
	CachedInput *decimal `yaml:"cached_input"`
	CacheWrite  *decimal `yaml:"cache_write"`
}

type longYAML struct {
	AbovePromptTokens int `yaml:"above_prompt_tokens"`
	ratesYAML         `yaml:",inline"`
}

type entryYAML struct {
	Provider    string    `yaml:"provider"`
	Model       string    `yaml:"model"`
	Aliases     []string  `yaml:"aliases"`
	LongContext *longYAML `yaml:"long_context"`
	ratesYAML   `yaml:",inline"`
	line        int
}

// decimal is a YAML scalar read from its source text, so "0.075" is exactly
// 75_000 micro-dollars and never passes through a float.
type decimal struct {
	v    PerMillion
	line int
}

func (d *decimal) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float" && n.Tag != "!!str") {
		return fmt.Errorf("line %d: price must be a decimal number", n.Line)
	}
	v, err := ParsePerMillion(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: price %w", n.Line, err)
	}
	d.v, d.line = v, n.Line
	return nil
}

func (s *sourceYAML) UnmarshalYAML(n *yaml.Node) error {
	if err := checkKeys(n, "provider", "url", "as_of", "note"); err != nil {
		return err
	}
	type plain sourceYAML
	s.line = n.Line
	return n.Decode((*plain)(s))
}

func (e *entryYAML) UnmarshalYAML(n *yaml.Node) error {
	if err := checkKeys(n, "provider", "model", "aliases", "long_context", "input", "output", "cached_input", "cache_write"); err != nil {
		return err
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "long_context" {
			if err := checkKeys(n.Content[i+1], "above_prompt_tokens", "input", "output", "cached_input", "cache_write"); err != nil {
				return err
			}
		}
	}
	type plain entryYAML
	e.line = n.Line
	return n.Decode((*plain)(e))
}

// checkKeys rejects mapping keys outside allowed (node.Decode does not
// apply the decoder's KnownFields to custom unmarshalers).
func checkKeys(n *yaml.Node, allowed ...string) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: expected a mapping", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		ok := false
		for _, a := range allowed {
			if k.Value == a {
				ok = true
				break
			}
		}
		if !ok {
			return fmt.Errorf("line %d: unknown key %q", k.Line, k.Value)
		}
	}
	return nil
}

// Load reads a price file. name is used in error messages and as each
// price's Origin ("configs/prices.yaml:42"). Every problem is reported, each
// with its line.
func Load(r io.Reader, name string) (*Table, error) {
	list, err := Parse(r, name)
	if err != nil {
		return nil, err
	}
	return New(list)
}

// LoadFile reads the price file at path.
func LoadFile(path string) (*Table, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Load(bytes.NewReader(b), path)
}

// Parse reads a price file into a list of prices without building a table,
// so that a caller can merge it with others first. Aliases become prices of
// their own; Source and AsOf come from the file's sources entry for the
// provider.
func Parse(r io.Reader, name string) ([]Price, error) {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	var f fileYAML
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty price file", name)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var errs []error
	sources := make(map[string]sourceYAML, len(f.Sources))
	for _, s := range f.Sources {
		p := strings.ToLower(s.Provider)
		if p == "" || s.URL == "" || s.AsOf == "" {
			errs = append(errs, fmt.Errorf("%s:%d: a source needs provider, url and as_of", name, s.line))
			continue
		}
		if _, dup := sources[p]; dup {
			errs = append(errs, fmt.Errorf("%s:%d: second source for provider %s", name, s.line, s.Provider))
			continue
		}
		sources[p] = s
	}
	var out []Price
	for _, e := range f.Prices {
		at := fmt.Sprintf("%s:%d", name, e.line)
		if e.Input == nil || e.Output == nil {
			errs = append(errs, fmt.Errorf("%s: %s/%s needs input and output prices", at, e.Provider, e.Model))
			continue
		}
		p := Price{Provider: e.Provider, Model: e.Model, Rates: e.ratesYAML.rates(), Origin: at}
		if src, ok := sources[strings.ToLower(e.Provider)]; ok {
			p.Source, p.AsOf = src.URL, src.AsOf
		}
		if e.LongContext != nil {
			if e.LongContext.Input == nil || e.LongContext.Output == nil {
				errs = append(errs, fmt.Errorf("%s: %s/%s long_context needs input and output prices", at, e.Provider, e.Model))
				continue
			}
			p.LongContext = &LongContext{AbovePromptTokens: e.LongContext.AbovePromptTokens, Rates: e.LongContext.ratesYAML.rates()}
		}
		if err := p.check(); err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, p)
		for _, a := range e.Aliases {
			alias := p
			alias.Model = a
			out = append(out, alias)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// rates converts parsed decimals, defaulting cached_input and cache_write
// to the input price (never to zero).
func (r ratesYAML) rates() Rates {
	out := Rates{Input: r.Input.v, Output: r.Output.v, CachedInput: r.Input.v, CacheWrite: r.Input.v}
	if r.CachedInput != nil {
		out.CachedInput = r.CachedInput.v
	}
	if r.CacheWrite != nil {
		out.CacheWrite = r.CacheWrite.v
	}
	return out
}
