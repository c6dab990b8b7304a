package configs

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxIDLen caps ids: they end up in logs, metrics and ledger rows.
const maxIDLen = 256

// validate checks the merged policy, applies defaults and reports every
// problem. root is the path given to Load, for policy-wide problems.
func (l *loader) validate(p *Policy, root string) {
	l.validateServer(&p.Server)
	providers := l.validateProviders(p.Providers)
	models, used := l.validateModels(p.Models, providers)
	orgs := l.validateOrgs(p.Orgs, models)
	tiers := l.validateTiers(p.Tiers)
	chat := map[string]bool{}
	for i := range p.Models {
		if p.Models[i].Type != ModelEmbedding {
			chat[p.Models[i].ID] = true
		}
	}
	for i := range p.Orgs {
		if !l.orgMeta[i].bad() {
			l.validateOrgRouting(l.orgMeta[i], &p.Orgs[i].Routing, providers)
			l.validateOrgQuota(l.orgMeta[i], &p.Orgs[i], tiers)
			l.validateOrgMoney(l.orgMeta[i], &p.Orgs[i], chat)
			l.validateOrgSavings(l.orgMeta[i], &p.Orgs[i], models)
		}
	}
	l.validatePrices(p.Prices, providers)
	for i := range p.Keys {
		if !l.keyMeta[i].bad() {
			l.validateKeyQuota(l.keyMeta[i], &p.Keys[i])
		}
	}
	l.validateKeys(p.Keys, models, orgs)

	for i := range p.Providers {
		if id := p.Providers[i].ID; providers[id] == &p.Providers[i] && !used[id] {
			l.rep.warn(l.provMeta[i].at("id"), fmt.Sprintf("provider %q is not used by any model", id))
		}
	}
	for _, c := range []struct {
		kind string
		n    int
	}{{"providers", len(p.Providers)}, {"models", len(p.Models)}, {"orgs", len(p.Orgs)}, {"keys", len(p.Keys)}} {
		if c.n == 0 && !l.broken {
			l.rep.problem(Pos{File: root}, "no "+c.kind+" declared (at least one is required)")
		}
	}
}

// bad reports whether m itself failed to decode (it was not a mapping):
// its checks would only repeat that.
func (m itemMeta) bad() bool { return m.file.fields[m.path].bad }

// field returns where m's field name was written.
func (m itemMeta) field(name string) (fieldInfo, bool) {
	fi, ok := m.file.fields[m.path+"."+name]
	return fi, ok
}

// at returns the position of m's field name, or of m if it was not written.
func (m itemMeta) at(name string) Pos {
	if fi, ok := m.field(name); ok {
		return Pos{File: m.file.name, Line: fi.line}
	}
	return m.pos
}

// errf reports a problem about m's field name, at that field, unless the
// field's value already had one.
func (l *loader) errf(m itemMeta, name, format string, args ...any) {
	if fi, ok := m.field(name); ok && fi.bad {
		return
	}
	l.rep.problem(m.at(name), m.path+"."+name+fmt.Sprintf(format, args...))
}

// required reports a required field of m that is missing (adding hint)
// or empty; an empty value due to environment references says which.
func (l *loader) required(m itemMeta, name, hint string) {
	fi, ok := m.field(name)
	if fi.bad {
		return
	}
	if !ok || fi.null {
		l.rep.problem(m.pos, m.path+"."+name+" is required"+hint)
		return
	}
	msg := m.path + "." + name + " is empty"
	if len(fi.empty) > 0 {
		var parts []string
		for _, u := range fi.empty {
			if u.unset {
				parts = append(parts, u.name+" is not set")
			} else {
				parts = append(parts, u.name+" is empty")
			}
		}
		msg += " (" + strings.Join(parts, ", ") + ")"
	}
	l.rep.problem(Pos{File: m.file.name, Line: fi.line}, msg)
}

// checkID reports a missing or malformed id; it returns whether id is usable.
func (l *loader) checkID(m itemMeta, id string) bool {
	switch {
	case id == "":
		l.required(m, "id", "")
		return false
	case len(id) > maxIDLen:
		l.errf(m, "id", " is longer than %d bytes", maxIDLen)
		return false
	case !utf8.ValidString(id) || strings.ContainsFunc(id, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		l.errf(m, "id", " %q must not contain spaces or control characters", id)
		return false
	}
	return true
}

// unique reports id if seen holds it already, else records it.
func (l *loader) unique(seen map[string]Pos, m itemMeta, kind, id string) {
	if first, dup := seen[id]; dup {
		l.errf(m, "id", ": %s %q is already declared at %s", kind, id, first)
		return
	}
	seen[id] = m.at("id")
}

func (l *loader) validateServer(s *Server) {
	if s.MaxBodyBytes == 0 {
		s.MaxBodyBytes = DefaultMaxBodyBytes
	}

	if l.server == nil {
		return
	}
	m := *l.server
	seen := map[string]int{}
	for j, h := range s.MetadataHeaders {
		name := "metadata_headers[" + strconv.Itoa(j) + "]"
		lower := strings.ToLower(h)
		switch {
		case !isToken(h):
			l.errf(m, name, ": %q is not a valid header name", h)
		case isCredentialHeader(lower):
			l.errf(m, name, ": %q carries credentials and cannot be recorded", h)
		case MetadataField(h) == "":
			l.errf(m, name, ": %q names no record field (the header, without an x-aigw- or x- prefix, must be one of %s)",
				h, strings.Join(MetadataFields(), ", "))
		default:
			if first, dup := seen[lower]; dup {
				l.rep.warn(m.at(name), fmt.Sprintf("%s.%s: %q repeats metadata_headers[%d]", m.path, name, h, first))
			} else {
				seen[lower] = j
			}
		}
	}
	l.validateBreaker(itemMeta{file: m.file, path: m.path + ".breaker", pos: m.at("breaker")}, &s.Breaker)
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

func isCredentialHeader(lower string) bool {
	switch lower {
	case "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key", "x-goog-api-key":
		return true
	}
	return false
}

const providerTypes = "openai, azure, anthropic, gemini, mock"

func (l *loader) validateProviders(ps []Provider) map[string]*Provider {
	byID := map[string]*Provider{}
	seen := map[string]Pos{}
	for i := range ps {
		pr, m := &ps[i], l.provMeta[i]
		if m.bad() {
			continue
		}
		if l.checkID(m, pr.ID) {
			l.unique(seen, m, "provider", pr.ID)
			if _, dup := byID[pr.ID]; !dup {
				byID[pr.ID] = pr
			}
		}

		switch pr.Type {
		case "":
			l.required(m, "type", " (one of "+providerTypes+")")
		case ProviderOpenAI, ProviderAzure, ProviderAnthropic, ProviderGemini, ProviderMock:
		default:
			l.errf(m, "type", " %q is not supported (use one of %s)", clip(pr.Type, 40), providerTypes)
		}

		switch {
		case pr.Type == ProviderMock:
			if pr.BaseURL != "" {
				l.rep.warn(m.at("base_url"), m.path+".base_url is not used by a provider of type mock")
			}
		case pr.BaseURL == "":
			l.required(m, "base_url", "")
		default:
			if u, err := checkBaseURL(pr.BaseURL); err != nil {
				l.errf(m, "base_url", " %s", err)
			} else {
				pr.BaseURL = u
			}
		}

		if pr.MaxConns < 0 {
			l.errf(m, "max_conns", " must not be negative")
		} else if pr.MaxConns == 0 {
			pr.MaxConns = DefaultMaxConns
		}
		setDefault(&pr.Timeouts.Connect, DefaultConnectTimeout)
		setDefault(&pr.Timeouts.FirstByte, DefaultFirstByteTimeout)
		setDefault(&pr.Timeouts.Idle, DefaultIdleTimeout)
		setDefault(&pr.Timeouts.Total, DefaultTotalTimeout)

		if pr.Type != ProviderMock {
			if pr.Mock != nil && pr.Type != "" {
				l.errf(m, "mock", " is only allowed with type mock (type is %q)", clip(pr.Type, 40))
			}
			continue
		}
		if pr.Mock == nil {
			pr.Mock = &Mock{}
		}
		mk := pr.Mock
		switch {
		case mk.Chunks == 0:
			mk.Chunks = DefaultMockChunks
		case mk.Chunks < 1 || mk.Chunks > MaxMockChunks:
			l.errf(m, "mock.chunks", " must be between 1 and %d (got %d)", MaxMockChunks, mk.Chunks)
		}
		switch {
		case mk.Dimensions == 0:
			mk.Dimensions = DefaultMockDimensions
		case mk.Dimensions < 1 || mk.Dimensions > MaxMockDimensions:
			l.errf(m, "mock.dimensions", " must be between 1 and %d (got %d)", MaxMockDimensions, mk.Dimensions)
		}
		if mk.Reply == "" {
			mk.Reply = DefaultMockReply
		}
	}
	return byID
}

func setDefault(d *Duration, def Duration) {
	if *d == 0 {
		*d = def
	}
}

// checkBaseURL validates an upstream base URL and returns it without
// trailing slashes. Errors do not echo the URL: it might hold credentials.
func checkBaseURL(s string) (string, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "", fmt.Errorf("is not a valid URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("must be an absolute http or https URL")
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("has no host")
	case u.User != nil:
		return "", fmt.Errorf("must not contain credentials (use api_key)")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#"):
		return "", fmt.Errorf("must not have a query or fragment")
	}
	return strings.TrimRight(s, "/"), nil
}

// validateModels returns the declared model ids and the ids of the
// providers some target uses.
func (l *loader) validateModels(ms []Model, providers map[string]*Provider) (ids, used map[string]bool) {
	ids, used = map[string]bool{}, map[string]bool{}
	seen := map[string]Pos{}
	for i := range ms {
		md, m := &ms[i], l.modelMeta[i]
		if m.bad() {
			continue
		}
		if l.checkID(m, md.ID) {
			if md.ID == AllModels {
				l.errf(m, "id", " %q is reserved (it means all models in orgs and keys)", md.ID)
			} else {
				l.unique(seen, m, "model", md.ID)
				ids[md.ID] = true
			}
		}
		switch md.Type {
		case "":
			md.Type = ModelChat
		case ModelChat, ModelEmbedding:
		default:
			l.errf(m, "type", " %q is not supported (use chat or embedding)", clip(md.Type, 40))
		}

		if len(md.Targets) == 0 {
			if fi, ok := m.field("targets"); ok && !fi.null {
				l.errf(m, "targets", " is empty: a model needs at least one target")
			} else {
				l.required(m, "targets", " (at least one target)")
			}
		}
		for j := range md.Targets {
			t := &md.Targets[j]
			tm := itemMeta{file: m.file, path: m.path + ".targets[" + strconv.Itoa(j) + "]", pos: t.Pos}
			if tm.bad() {
				continue
			}
			switch pr, ok := providers[t.Provider]; {
			case t.Provider == "":
				l.required(tm, "provider", "")
			case !ok:
				l.errf(tm, "provider", ": provider %q is not declared", clip(t.Provider, 64))
			default:
				used[t.Provider] = true
				if md.Type == ModelEmbedding && pr.Type == ProviderAnthropic {
					l.errf(tm, "provider", ": provider %q is of type anthropic, which has no embeddings API", t.Provider)
				}
			}
			if t.Model == "" {
				t.Model = md.ID
			}
			if t.MaxTokens < 0 {
				l.errf(tm, "max_tokens", " must not be negative")
			}
		}
		l.validateRouting(m, md)
	}
	return ids, used
}

func (l *loader) validateOrgs(list []Org, models map[string]bool) map[string]*Org {
	byID := map[string]*Org{}
	seen := map[string]Pos{}
	for i := range list {
		o, m := &list[i], l.orgMeta[i]
		if m.bad() {
			continue
		}
		if l.checkID(m, o.ID) {
			l.unique(seen, m, "org", o.ID)
			if _, dup := byID[o.ID]; !dup {
				byID[o.ID] = o
			}
		}
		if fi, _ := m.field("models"); len(o.Models) == 0 && !fi.bad {
			l.rep.warn(m.at("models"), fmt.Sprintf("%s.models is empty: keys of org %q can use no model", m.path, o.ID))
		}
		l.checkModelRefs(m, o.Models, models, nil)
	}
	return byID
}

// checkModelRefs reports entries of list (m's "models" field) that are not
// declared models, or, when org is non-nil, not allowed to org.
func (l *loader) checkModelRefs(m itemMeta, list []string, models map[string]bool, org *Org) {
	for j, name := range list {
		field := "models[" + strconv.Itoa(j) + "]"
		switch {
		case name == AllModels:
		case name == "":
			l.required(m, field, "")
		case !models[name]:
			l.errf(m, field, ": model %q is not declared", clip(name, 64))
		case org != nil && !allows(org.Models, name):
			l.errf(m, field, ": model %q is not allowed for org %q", name, org.ID)
		}
	}
}

func allows(list []string, model string) bool {
	for _, s := range list {
		if s == AllModels || s == model {
			return true
		}
	}
	return false
}

func (l *loader) validateKeys(ks []Key, models map[string]bool, orgs map[string]*Org) {
	seen := map[string]Pos{}
	hashes := map[string]string{} // sha256 -> "key \"id\" (file:line)"
	for i := range ks {
		k, m := &ks[i], l.keyMeta[i]
		if m.bad() {
			continue
		}
		if l.checkID(m, k.ID) {
			l.unique(seen, m, "key", k.ID)
		}
		org, orgOK := orgs[k.Org]
		switch {
		case k.Org == "":
			l.required(m, "org", "")
		case !orgOK:
			l.errf(m, "org", ": org %q is not declared", clip(k.Org, 64))
		}
		if k.SHA256 == "" {
			l.required(m, "sha256", " (the lowercase hex sha256 of the key)")
		} else if msg := checkSHA256(k.SHA256); msg != "" {
			l.errf(m, "sha256", " %s", msg)
		} else if first, dup := hashes[k.SHA256]; dup {
			l.errf(m, "sha256", ": same hash as %s", first)
		} else {
			hashes[k.SHA256] = fmt.Sprintf("key %q (%s)", k.ID, m.at("sha256"))
		}
		if !orgOK {
			org = nil
		}
		l.checkModelRefs(m, k.Models, models, org)
	}
}

// checkSHA256 explains why s is not a lowercase hex sha256, or returns "".
// It never echoes s: it may be a clear-text key pasted by mistake.
func checkSHA256(s string) string {
	if strings.HasPrefix(s, "sk-") {
		return "looks like a clear-text key: store its sha256 instead (64 lowercase hex characters)"
	}
	if len(s) != 64 {
		return fmt.Sprintf("must be 64 lowercase hex characters (the sha256 of the key), got %d characters", len(s))
	}
	upper := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			upper = true
		default:
			return "must be 64 lowercase hex characters (the sha256 of the key)"
		}
	}
	if upper {
		return "must be lowercase hex"
	}
	return ""
}
