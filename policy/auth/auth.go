// Package auth maps a presented gateway key to its Principal. Keys are only
// ever known by their sha256 digest.
package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/aigw/aigw/policy"
	"github.com/aigw/aigw/providers/llm"
)

// Key is one gateway key as policy declares it.
type Key struct {
	ID        string
	Org       string
	SHA256    string // lowercase hex digest of the key text
	Models    []string
	AllModels bool
	Disabled  bool
	// Priority becomes the principal's Priority (its requests' queue class).
	Priority int
}

// Table authenticates keys. It is immutable after New and safe for
// concurrent use.
type Table struct {
	byDigest map[[sha256.Size]byte]*policy.Principal
}

// New builds the table. Disabled keys are left out, so they authenticate
// like unknown ones.
func New(keys []Key) (*Table, error) {
	t := &Table{byDigest: make(map[[sha256.Size]byte]*policy.Principal, len(keys))}
	for _, k := range keys {
		var d [sha256.Size]byte
		raw, err := hex.DecodeString(k.SHA256)
		if err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("key %q: sha256 must be 64 hex digits", k.ID)
		}
		copy(d[:], raw)
		if k.Disabled {
			continue
		}
		p := &policy.Principal{Org: k.Org, KeyID: k.ID, AllModels: k.AllModels, Priority: k.Priority}
		if !k.AllModels {
			p.Models = make(map[string]struct{}, len(k.Models))
			for _, m := range k.Models {
				p.Models[m] = struct{}{}
			}
		}
		t.byDigest[d] = p
	}
	return t, nil
}

// Authenticate returns the principal of the presented key, or an *llm.Error
// of KindAuth.
func (t *Table) Authenticate(key []byte) (*policy.Principal, error) {
	if len(key) == 0 {
		return nil, &llm.Error{Kind: llm.KindAuth, Code: "missing_api_key",
			Msg: "You didn't provide an API key. You need to provide your gateway key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."}
	}
	if p, ok := t.byDigest[sha256.Sum256(key)]; ok {
		return p, nil
	}
	return nil, &llm.Error{Kind: llm.KindAuth, Code: "invalid_api_key", Msg: "Incorrect API key provided. Check the gateway key your application uses."}
}

// Digest returns the lowercase hex sha256 of a key, the form policy files
// store.
func Digest(key string) string {
	d := sha256.Sum256([]byte(key))
	return hex.EncodeToString(d[:])
}
