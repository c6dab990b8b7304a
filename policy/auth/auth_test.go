package auth

import (
	"errors"
	"testing"

	"github.com/aigw/aigw/providers/llm"
)

func TestAuthenticate(t *testing.T) {
	tab, err := New([]Key{
		{ID: "a", Org: "o1", SHA256: Digest("sk-a"), AllModels: true},
		{ID: "b", Org: "o2", SHA256: Digest("sk-b"), Models: []string{"m1"}},
		{ID: "c", Org: "o2", SHA256: Digest("sk-c"), AllModels: true, Disabled: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := tab.Authenticate([]byte("sk-a"))
	if err != nil || p.Org != "o1" || p.KeyID != "a" || !p.Allows("anything") {
		t.Fatalf("sk-a: %+v %v", p, err)
	}
	p, err = tab.Authenticate([]byte("sk-b"))
	if err != nil || !p.Allows("m1") || p.Allows("m2") {
		t.Fatalf("sk-b: %+v %v", p, err)
	}
	for _, k := range []string{"", "sk-c", "sk-x", "sk-a "} {
		_, err := tab.Authenticate([]byte(k))
		var e *llm.Error
		if !errors.As(err, &e) || e.Kind != llm.KindAuth {
			t.Errorf("%q: %v, want KindAuth", k, err)
		}
	}
	if _, err := New([]Key{{ID: "bad", SHA256: "xyz"}}); err == nil {
		t.Fatal("malformed digest accepted")
	}
}

func TestDigest(t *testing.T) {
	// The quickstart's demo key hash.
	if got := Digest("sk-aigw-demo"); got != "c7b51ef2e45c5f05cefec08758a05482886576bee37a4eb2294eb7bcc3923d82" {
		t.Fatal(got)
	}
}
