package proxy

import (
	"fmt"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/aigw/aigw/accounting"
	"github.com/aigw/aigw/accounting/ledger"
	"github.com/aigw/aigw/accounting/prices"
	"github.com/aigw/aigw/configs"
	"github.com/aigw/aigw/providers/llm"
)

// PriceTable merges the policy's prices into base (the shipped table) and
// reports every routable model target the result cannot price, at the
// target's position in the policy: an unpriced model would be recorded at
// an unknown cost and slip past budgets. A nil base prices nothing but
// the policy's own entries. The table is nil when the policy's entries
// themselves are invalid (the loader reports those first).
func PriceTable(pol *configs.Policy, base *prices.Table) (*prices.Table, []configs.Problem) {
	var probs []configs.Problem
	list := make([]prices.Price, 0, len(pol.Prices))
	for _, p := range pol.Prices {
		pr, err := policyPrice(p)
		if err != nil {
			probs = append(probs, configs.Problem{Pos: p.Pos, Msg: err.Error()})
			continue
		}
		list = append(list, pr)
	}
	if base == nil {
		base, _ = prices.New(nil)
	}
	table, err := base.Merge(list)
	if err != nil {
		return nil, append(probs, configs.Problem{Msg: "prices: " + err.Error()})
	}
	types := make(map[string]string, len(pol.Providers))
	for _, p := range pol.Providers {
		types[p.ID] = p.Type
	}
	for _, m := range pol.Models {
		for _, tr := range m.Targets {
			model := tr.Model
			if model == "" {
				model = m.ID
			}
			t := llm.Target{Provider: tr.Provider, Type: types[tr.Provider], Model: model}
			if _, ok := table.ForTarget(&t); !ok {
				probs = append(probs, configs.Problem{Pos: tr.Pos, Msg: fmt.Sprintf(
					"model %s: no price for %s model %q (add it under prices: with input and output in USD per million tokens)",
					m.ID, tr.Provider, model)})
			}
		}
	}
	return table, probs
}

// policyPrice converts a policy price entry (validated by the loader).
func policyPrice(p configs.Price) (prices.Price, error) {
	out := prices.Price{Provider: p.Provider, Model: p.Model, Origin: p.Pos.String(), Source: "policy"}
	for _, f := range []struct {
		v   configs.Decimal
		dst *prices.PerMillion
	}{{p.Input, &out.Input}, {p.Output, &out.Output}, {p.CachedInput, &out.CachedInput}, {p.CacheWrite, &out.CacheWrite}} {
		if f.v.IsZero() {
			continue
		}
		v, err := prices.ParsePerMillion(string(f.v))
		if err != nil {
			return out, fmt.Errorf("prices %s/%s: %w", p.Provider, p.Model, err)
		}
		*f.dst = v
	}
	if p.CachedInput.IsZero() {
		out.CachedInput = out.Input
	}
	if p.CacheWrite.IsZero() {
		out.CacheWrite = out.Input
	}
	return out, nil
}

// currencies returns each org's display rate; orgs without one record USD.
func currencies(pol *configs.Policy) (map[string]accounting.Rate, error) {
	out := map[string]accounting.Rate{}
	for _, o := range pol.Orgs {
		c := o.Currency
		if c.Code == "" || c.Code == "USD" && c.USDRate.IsZero() {
			continue
		}
		r, err := accounting.ParseRate(c.Code, string(c.USDRate))
		if err != nil {
			return nil, fmt.Errorf("org %s: currency: %w", o.ID, err)
		}
		out[o.ID] = r
	}
	return out, nil
}

// metaHeader is one allow-listed request header and the record field it
// fills.
type metaHeader struct {
	header string
	field  string // a configs.Meta* name
}

func metadataHeaders(list []string) []metaHeader {
	out := make([]metaHeader, 0, len(list))
	for _, h := range list {
		if f := configs.MetadataField(h); f != "" {
			out = append(out, metaHeader{header: h, field: f})
		}
	}
	return out
}

// metadata is a request's recorded metadata, copied out of the request
// headers (the RequestCtx is not touched after the handler returns).
type metadata struct {
	useCase, vendorType, weddingDate string
	weddingRelated                   bool
}

// maxMetaValue caps a metadata value; longer values are cut.
const maxMetaValue = 128

// readMetadata copies the allow-listed headers of the request. A wedding
// date that is not YYYY-MM-DD and a wedding-related flag that is not a
// boolean are left out rather than recorded as noise.
func readMetadata(h *fasthttp.RequestHeader, list []metaHeader) metadata {
	var md metadata
	for _, mh := range list {
		v := h.Peek(mh.header)
		if len(v) == 0 {
			continue
		}
		if len(v) > maxMetaValue {
			v = v[:maxMetaValue]
		}
		s := strings.TrimSpace(string(v))
		switch mh.field {
		case configs.MetaUseCase:
			md.useCase = s
		case configs.MetaVendorType:
			md.vendorType = s
		case configs.MetaWeddingDate:
			if _, err := time.Parse(time.DateOnly, s); err == nil {
				md.weddingDate = s
			}
		case configs.MetaWeddingRelated:
			switch strings.ToLower(s) {
			case "true", "yes", "1", "y":
				md.weddingRelated = true
			}
		}
	}
	return md
}

// apply puts the metadata into a record.
func (md *metadata) apply(r *ledger.Record) {
	r.UseCase, r.VendorType, r.WeddingDate, r.WeddingRelated = md.useCase, md.vendorType, md.weddingDate, md.weddingRelated
}
