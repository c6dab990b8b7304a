package quota

import (
	"context"
	"strings"
	"testing"
	"time"
)

// hashTag returns what Redis Cluster hashes for key: the content of the
// first {...} when not empty, else the whole key.
func hashTag(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}

// TestKeysShareTheOrgsHashTag: every key one decision touches hashes to
// the same Redis Cluster slot, whatever the org and key ids contain.
func TestKeysShareTheOrgsHashTag(t *testing.T) {
	all := Limits{RPM: Limit{Max: 1}, TPM: Limit{Max: 1}, TPH: Limit{Max: 1}, RPD: Limit{Max: 1}, TPD: Limit{Max: 1}}
	l := New(NewMemory(), Options{})
	for _, id := range []string{"acme", "we{ir}d:org%", "}{", "a:b"} {
		g, err := l.NewGate(Policies{Orgs: []OrgPolicy{{Org: id, Tier: Tier{Limits: all},
			Keys: []KeyLimits{{KeyID: "k{1}:x", Limits: all}}}}})
		if err != nil {
			t.Fatal(err)
		}
		p := g.planFor(id)
		h, d, err := g.attempt(context.Background(), p, Subject{Org: id, KeyID: "k{1}:x"}, Need{Requests: 1}, time.Now())
		if err != nil || !d.Allowed {
			t.Fatalf("%q: %v %+v", id, err, d)
		}
		if h.b.n != 10 {
			t.Fatalf("%q: %d rules, want 10", id, h.b.n)
		}
		seen := map[string]bool{}
		for i := 0; i < h.b.n; i++ {
			k := h.b.rules[i].key
			if seen[k] {
				t.Fatalf("%q: key %s used twice", id, k)
			}
			seen[k] = true
			if !strings.HasPrefix(k, DefaultNamespace+":{") || hashTag(k) != escapeID(id) {
				t.Fatalf("%q: key %s hashes on %q", id, k, hashTag(k))
			}
		}
	}
}
