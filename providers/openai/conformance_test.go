package openai_test

import (
	"testing"

	"github.com/aigw/aigw/providers/llm"
	"github.com/aigw/aigw/providers/openai"
	"github.com/aigw/aigw/providers/providertest"
)

func TestConformance(t *testing.T) {
	providertest.RunConformance(t, providertest.Case[*openai.StreamDecoder]{
		Adapter: openai.Adapter{},
		Target: llm.Target{
			ID:       "openai/gpt-4o-2024-08-06",
			Provider: "openai",
			Type:     "openai",
			BaseURL:  "https://api.openai.test/v1",
			Model:    "gpt-4o-2024-08-06",
			APIKey:   "sk-test-key",
		},
		CredentialHeader: "Authorization",
		CredentialValue:  "Bearer sk-test-key",
		Header:           map[string]string{"Content-Type": "application/json"},
	})
}

// TestAzureConformance runs the suite for Azure OpenAI twice: over the
// openai fixtures (Azure takes and answers OpenAI's bodies, so the goldens
// must match byte for byte as JSON values) and over testdata/azure, which
// holds what only Azure sends.
func TestAzureConformance(t *testing.T) {
	c := providertest.Case[*openai.StreamDecoder]{
		Adapter: openai.AzureAdapter{},
		Target: llm.Target{
			ID:         "azure-eu/gpt-4o-2024-08-06",
			Provider:   "azure-eu",
			Type:       "azure",
			BaseURL:    "https://example-eu.openai.azure.test",
			Model:      "gpt-4o-2024-08-06",
			APIKey:     "azure-test-key",
			APIVersion: "2024-10-21",
		},
		CredentialHeader: "api-key",
		Header:           map[string]string{"Content-Type": "application/json"},
	}
	t.Run("openai-fixtures", func(t *testing.T) {
		if providertest.Updating() {
			t.Skip("the openai fixtures' goldens are written by TestConformance")
		}
		providertest.RunConformance(t, c)
	})
	c.Dir = "testdata/azure"
	t.Run("azure-fixtures", func(t *testing.T) { providertest.RunConformance(t, c) })
}
