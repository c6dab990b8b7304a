package openai

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/aigw/aigw/providers/llm"
)

var azureTarget = &llm.Target{ID: "az/gpt-4o-prod", Provider: "az", Type: "azure",
	BaseURL: "https://my-resource.openai.azure.com", Model: "gpt-4o-prod", APIKey: "az-key"}

func TestAzureEncodeChat(t *testing.T) {
	var in llm.Request
	if err := in.UnmarshalJSON([]byte(`{"model":"alias","messages":[{"role":"user","content":"hi"}],"stream":true}`)); err != nil {
		t.Fatal(err)
	}
	out, err := AzureAdapter{}.EncodeChat(nil, &in, azureTarget)
	if err != nil {
		t.Fatal(err)
	}
	want := "https://my-resource.openai.azure.com/openai/deployments/gpt-4o-prod/chat/completions?api-version=" + DefaultAzureAPIVersion
	if out.URL != want || out.Method != "POST" || !out.Stream {
		t.Fatalf("outbound %s %s stream=%v, want URL %s", out.Method, out.URL, out.Stream, want)
	}
	if DefaultAzureAPIVersion != "2024-10-21" {
		t.Errorf("default api-version %s; update the doc comment and this test together", DefaultAzureAPIVersion)
	}
	hdr := map[string]string{}
	for _, h := range out.Header {
		if _, dup := hdr[h.Key]; dup {
			t.Errorf("header %s twice", h.Key)
		}
		hdr[h.Key] = h.Value
	}
	if hdr["api-key"] != "az-key" || hdr["Accept"] != "text/event-stream" || hdr["Content-Type"] != "application/json" || len(hdr) != 3 {
		t.Fatalf("headers %v (want api-key, no Authorization)", hdr)
	}
	// The body is OpenAI's, with the deployment as model and the usage
	// chunk asked for.
	oa, err := Adapter{}.EncodeChat(nil, &in, azureTarget)
	if err != nil {
		t.Fatal(err)
	}
	if string(out.Body) != string(oa.Body) {
		t.Fatalf("azure body %s differs from openai body %s", out.Body, oa.Body)
	}
	var body struct {
		Model         string `json:"model"`
		StreamOptions struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	if err := json.Unmarshal(out.Body, &body); err != nil || body.Model != "gpt-4o-prod" || !body.StreamOptions.IncludeUsage {
		t.Fatalf("body %s: %v", out.Body, err)
	}
	if in.Model != "alias" || in.StreamOptions != nil {
		t.Fatal("request mutated")
	}
}

func TestAzureURLs(t *testing.T) {
	in := llm.EmbeddingRequest{Model: "alias", Input: json.RawMessage(`"x"`)}
	for _, c := range []struct {
		base, model, version, want string
	}{
		{"https://r.openai.azure.com", "emb", "", "https://r.openai.azure.com/openai/deployments/emb/embeddings?api-version=2024-10-21"},
		{"https://r.openai.azure.com/", "emb", "2025-04-01-preview", "https://r.openai.azure.com/openai/deployments/emb/embeddings?api-version=2025-04-01-preview"},
		// A base that already names the /openai segment is not doubled.
		{"https://r.openai.azure.com/openai", "emb", "", "https://r.openai.azure.com/openai/deployments/emb/embeddings?api-version=2024-10-21"},
		// Behind a gateway path prefix.
		{"http://127.0.0.1:9000/azure", "emb", "", "http://127.0.0.1:9000/azure/openai/deployments/emb/embeddings?api-version=2024-10-21"},
		// A deployment name cannot add path segments or a query; nor can a version.
		{"https://r.openai.azure.com", "a/b?c", "v&x=1", "https://r.openai.azure.com/openai/deployments/a%2Fb%3Fc/embeddings?api-version=v%26x%3D1"},
	} {
		tg := *azureTarget
		tg.BaseURL, tg.Model, tg.APIVersion = c.base, c.model, c.version
		out, err := AzureAdapter{}.EncodeEmbeddings(nil, &in, &tg)
		if err != nil {
			t.Fatal(err)
		}
		if out.URL != c.want {
			t.Errorf("base %q model %q version %q: URL %s, want %s", c.base, c.model, c.version, out.URL, c.want)
		}
		if string(out.Body) != `{"model":"`+c.model+`","input":"x"}` {
			t.Errorf("body %s", out.Body)
		}
	}

	// No key: no credential header at all (a keyless proxy in front).
	tg := *azureTarget
	tg.APIKey = ""
	out, err := AzureAdapter{}.EncodeEmbeddings(nil, &in, &tg)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range out.Header {
		if h.Key == "api-key" || h.Key == "Authorization" {
			t.Errorf("credential header %s without a key", h.Key)
		}
	}

	// A target without base URL or deployment is a configuration bug.
	var e *llm.Error
	for _, tg := range []llm.Target{{Model: "m"}, {BaseURL: "https://r.openai.azure.com"}} {
		if _, err := (AzureAdapter{}).EncodeEmbeddings(nil, &in, &tg); !errors.As(err, &e) || e.Kind != llm.KindInternal {
			t.Errorf("target %+v: err %v", tg, err)
		}
		var req llm.Request
		if _, err := (AzureAdapter{}).EncodeChat(nil, &req, &tg); !errors.As(err, &e) || e.Kind != llm.KindInternal {
			t.Errorf("target %+v: chat err %v", tg, err)
		}
	}
}

func TestAzureClassifyError(t *testing.T) {
	hdr := map[string]string{"Retry-After": "6", "Retry-After-Ms": "5800"}
	err := AzureAdapter{}.ClassifyError(429, func(k string) string { return hdr[k] },
		[]byte(`{"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation have exceeded token rate limit."}}`))
	var e *llm.Error
	if !errors.As(err, &e) || e.Kind != llm.KindRateLimit || !e.Retryable || e.Code != "" ||
		e.RetryAfter != 5800*time.Millisecond || e.Msg == "" {
		t.Fatalf("429: %+v", e)
	}
	err = AzureAdapter{}.ClassifyError(404, nil, []byte(`{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist."}}`))
	if !errors.As(err, &e) || e.Kind != llm.KindNotFound || e.Code != "DeploymentNotFound" {
		t.Fatalf("404: %+v", e)
	}
}
