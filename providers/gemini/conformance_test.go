package gemini

import (
	"testing"
	"time"

	"github.com/aigw/aigw/providers/llm"
	"github.com/aigw/aigw/providers/providertest"
)

// fixedNow is the clock of every test adapter: Created is 1700000000.
func fixedNow() time.Time { return time.Unix(1700000000, 0) }

const testKey = "test-gemini-key-0123456789"

func testTarget(model string) llm.Target {
	return llm.Target{
		ID:       "gemini/" + model,
		Provider: "google",
		Type:     ProviderType,
		BaseURL:  "https://generativelanguage.googleapis.com",
		Model:    model,
		APIKey:   testKey,
	}
}

// TestConformance runs the shared provider suite over testdata/ (target
// gemini-2.5-flash, which does not validate thought signatures) and
// testdata/gemini3/ (a Gemini 3 target, which does).
func TestConformance(t *testing.T) {
	for _, c := range []struct {
		dir, model string
	}{
		{"testdata", "gemini-2.5-flash"},
		{"testdata/gemini3", "gemini-3-pro-preview"},
	} {
		t.Run(c.model, func(t *testing.T) {
			providertest.RunConformance(t, providertest.Case[*StreamDecoder]{
				Adapter:          New(fixedNow),
				Dir:              c.dir,
				Target:           testTarget(c.model),
				CredentialHeader: "x-goog-api-key",
				Header:           map[string]string{"Content-Type": "application/json"},
			})
		})
	}
}

// The adapter has proxy.Adapter's method set, with the stream decoder as a
// concrete type (providertest.Adapter is generic in it for that reason).
var (
	_ providertest.Adapter[*StreamDecoder] = (*Adapter)(nil)
	_ providertest.StreamDecoder           = (*StreamDecoder)(nil)
)
