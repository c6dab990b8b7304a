package anthropic_test

import (
	"testing"
	"time"

	"github.com/aigw/aigw/providers/anthropic"
	"github.com/aigw/aigw/providers/llm"
	"github.com/aigw/aigw/providers/providertest"
)

// fixedNow is the clock of every test adapter: 2025-01-01T00:00:00Z.
var fixedNow = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func testAdapter() anthropic.Adapter {
	return anthropic.Adapter{Now: func() time.Time { return fixedNow }}
}

func testTarget() llm.Target {
	return llm.Target{
		ID:       "anthropic/claude-sonnet-4-5",
		Provider: "anthropic",
		Type:     "anthropic",
		BaseURL:  "https://api.anthropic.test",
		Model:    "claude-sonnet-4-5",
		APIKey:   "sk-ant-test-key",
	}
}

func TestConformance(t *testing.T) {
	providertest.RunConformance(t, providertest.Case[*anthropic.StreamDecoder]{
		Adapter:          testAdapter(),
		Target:           testTarget(),
		CredentialHeader: "x-api-key",
		Header: map[string]string{
			"anthropic-version": anthropic.DefaultAPIVersion,
			"content-type":      "application/json",
		},
	})
}
