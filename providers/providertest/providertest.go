// Package providertest is the conformance suite every provider adapter runs
// from its own tests. It is file driven: an adapter's testdata directory
// holds canonical requests, recorded upstream answers and the golden files
// the adapter must reproduce, and RunConformance checks them all, plus the
// properties every adapter must have (credentials in the right header,
// determinism, no panic on garbage).
//
// # Testdata layout
//
// Every directory is optional; NAME is any file name stem.
//
//	requests/NAME.json              canonical chat request, OpenAI wire format
//	requests/NAME.upstream.json     golden: the body EncodeChat builds (compared
//	                                as JSON values, not bytes)
//	requests/NAME.error.json        golden instead of .upstream.json when
//	                                EncodeChat must refuse: {"kind","param",...}
//	responses/NAME.json             recorded 2xx upstream body
//	responses/NAME.expected.json    golden: the canonical response DecodeChat
//	                                returns (all fields, see dump.go), or
//	                                {"error":{...}} when it must fail
//	streams/NAME.sse                recorded SSE body
//	streams/NAME.request.json       optional canonical request given to
//	                                NewStreamDecoder (default: model
//	                                "test-model", stream true)
//	streams/NAME.expected.json      golden: {"deltas":[...],"usage":{...},
//	                                "done":bool,"error":{...}}
//	errors/NAME.json                recorded error answer: {"status":429,
//	                                "header":{"Retry-After":"3"},"body":...};
//	                                body is used verbatim when it is a JSON
//	                                string, as its JSON text otherwise
//	errors/NAME.expected.json       golden: the classified *llm.Error
//	embeddings/NAME.json            canonical embeddings request
//	embeddings/NAME.upstream.json   golden body, or NAME.error.json
//	embedding_responses/NAME.json   recorded embeddings body, and
//	embedding_responses/NAME.expected.json
//
// Golden files are written, and stale alternatives (.upstream.json versus
// .error.json) removed, by running the adapter's tests with -update:
//
//	go test ./providers/anthropic -run Conformance -update
//
// and then reviewing the diff. The -update flag is registered by this
// package; a test package importing it must not define its own.
package providertest

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aigw/aigw/providers/llm"
	"github.com/aigw/aigw/providers/sse"
)

// update is set by the -update flag; it is only read.
var update = flag.Bool("update", false, "rewrite provider golden files in testdata")

// Updating reports whether the test binary runs with -update.
func Updating() bool { return *update }

// StreamDecoder is the stream decoder method set (the same as
// proxy.StreamDecoder, owned here so that providers need not import proxy).
type StreamDecoder interface {
	Decode(ev *sse.Event, dst []llm.Delta) ([]llm.Delta, error)
	Usage() (llm.Usage, bool)
	Done() bool
}

// Adapter is proxy.Adapter's method set, generic in the stream decoder's
// type so that an adapter returning a concrete decoder type conforms.
type Adapter[D StreamDecoder] interface {
	EncodeChat(dst []byte, in *llm.Request, t *llm.Target) (llm.Outbound, error)
	DecodeChat(body []byte) (*llm.Response, error)
	NewStreamDecoder(in *llm.Request) D
	ClassifyError(status int, header func(key string) string, body []byte) error
	EncodeEmbeddings(dst []byte, in *llm.EmbeddingRequest, t *llm.Target) (llm.Outbound, error)
	DecodeEmbeddings(body []byte) (*llm.EmbeddingResponse, error)
}

// Case describes one adapter under test.
type Case[D StreamDecoder] struct {
	// Adapter is the adapter; it should be deterministic (a fixed clock).
	Adapter Adapter[D]
	// Dir is the testdata directory; "testdata" when empty.
	Dir string
	// Target is passed to EncodeChat and EncodeEmbeddings. Its APIKey
	// should be a recognisable fake.
	Target llm.Target
	// CredentialHeader is the header that must carry the credential on
	// every outbound request (for example "x-api-key" or "Authorization");
	// empty skips the check (a provider authenticating in the URL).
	// Unless it is "Authorization", no Authorization header may be sent.
	CredentialHeader string
	// CredentialValue is the expected value of CredentialHeader; empty
	// means Target.APIKey.
	CredentialValue string
	// Header lists further headers every chat request must carry, with
	// their values (for example anthropic-version).
	Header map[string]string
	// MaxEventBytes is the SSE scanner's cap; 0 means 1 MiB.
	MaxEventBytes int
	// GarbageRounds is the number of random inputs fed to the decoders;
	// 0 means 300.
	GarbageRounds int
}

// RunConformance runs the suite for c as subtests of t.
func RunConformance[D StreamDecoder](t *testing.T, c Case[D]) {
	t.Helper()
	if c.Adapter == nil {
		t.Fatal("providertest: Case.Adapter is nil")
	}
	if c.Dir == "" {
		c.Dir = "testdata"
	}
	if c.MaxEventBytes <= 0 {
		c.MaxEventBytes = 1 << 20
	}
	if c.GarbageRounds <= 0 {
		c.GarbageRounds = 300
	}
	t.Run("requests", func(t *testing.T) { runRequests(t, &c) })
	t.Run("responses", func(t *testing.T) { runResponses(t, &c) })
	t.Run("streams", func(t *testing.T) { runStreams(t, &c) })
	t.Run("errors", func(t *testing.T) { runErrors(t, &c) })
	t.Run("embeddings", func(t *testing.T) { runEmbeddings(t, &c) })
	t.Run("garbage", func(t *testing.T) { runGarbage(t, &c) })
}

// inputs lists the input files of dir/sub with extension ext, leaving out
// golden and companion files.
func inputs(t *testing.T, dir, sub, ext string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, sub, "*"+ext))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		base := filepath.Base(f)
		if strings.HasSuffix(base, ".upstream.json") || strings.HasSuffix(base, ".error.json") ||
			strings.HasSuffix(base, ".expected.json") || strings.HasSuffix(base, ".request.json") {
			continue
		}
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

func stem(path, ext string) string { return strings.TrimSuffix(path, ext) }

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
