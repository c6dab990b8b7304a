package proxy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// malformed is one generated bad request.
type malformed struct {
	kind   string
	method string
	path   string
	header map[string]string
	body   []byte
}

// genMalformed builds n bad requests from a fixed seed: bad JSON, wrong
// types, oversize fields, bad UTF-8, missing or broken headers, unknown
// paths. None of them is a valid request, so every answer must be a 4xx.
func genMalformed(n int, seed uint64) []malformed {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	valid := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
	auth := map[string]string{"Authorization": "Bearer " + demoKey, "Content-Type": "application/json"}
	wrongTypes := []string{
		`{"model":123,"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"gpt-4o-mini","messages":"hi"}`,
		`{"model":"gpt-4o-mini","messages":[1,2]}`,
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":5}]}`,
		`{"model":"gpt-4o-mini","messages":[{"role":7,"content":"x"}]}`,
		`{"model":"gpt-4o-mini","messages":[{"role":"wizard","content":"x"}]}`,
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stream":"yes"}`,
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":"ten"}`,
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":-3}`,
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"temperature":"hot"}`,
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"temperature":9}`,
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"n":0}`,
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stop":5}`,
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"tools":{}}`,
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stream_options":1}`,
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":[{"type":"text","text":7}]}]}`,
		`{"model":"gpt-4o-mini","messages":[{"role":"tool","content":"x"}]}`,
		`{"model":"gpt-4o-mini","messages":[]}`,
		`{"model":"","messages":[{"role":"user","content":"hi"}]}`,
		`{"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"gpt-4o-mini"}`,
		`{"model":"no-such-model","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"text-embedding-3-small","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":["gpt-4o-mini"],"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":null,"messages":null}`,
	}
	embWrong := []string{
		`{"model":"text-embedding-3-small"}`,
		`{"model":"text-embedding-3-small","input":5}`,
		`{"model":"text-embedding-3-small","input":"x","encoding_format":"hex"}`,
		`{"model":"gpt-4o-mini","input":"x"}`,
		`{"model":1,"input":"x"}`,
	}
	out := make([]malformed, 0, n)
	for i := 0; i < n; i++ {
		m := malformed{method: http.MethodPost, path: "/v1/chat/completions", header: auth}
		switch k := i % 9; k {
		case 0: // truncated valid JSON
			m.kind = "truncated"
			cut := 1 + r.IntN(len(valid)-2)
			m.body = []byte(valid[:cut])
		case 1: // random bytes
			m.kind = "random"
			b := make([]byte, 1+r.IntN(512))
			for j := range b {
				b[j] = byte(r.IntN(256))
			}
			m.body = b
		case 2: // wrong types and missing fields
			m.kind = "wrong_type"
			m.body = []byte(wrongTypes[r.IntN(len(wrongTypes))])
		case 3: // oversize fields (over the 64 KiB test limit)
			m.kind = "huge"
			size := 65*1024 + r.IntN(256*1024)
			m.body = []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("a", size) + `"}]}`)
		case 4: // invalid UTF-8 inside otherwise valid JSON
			m.kind = "bad_utf8"
			b := []byte(valid)
			pos := strings.Index(valid, "hi")
			b[pos] = byte(0x80 + r.IntN(0x40))
			b[pos+1] = 0xff
			m.body = b
		case 5: // missing or broken credentials
			m.kind = "bad_auth"
			m.body = []byte(valid)
			switch r.IntN(4) {
			case 0:
				m.header = map[string]string{"Content-Type": "application/json"}
			case 1:
				m.header = map[string]string{"Authorization": "Basic " + demoKey}
			case 2:
				m.header = map[string]string{"Authorization": "Bearer "}
			default:
				m.header = map[string]string{"Authorization": fmt.Sprintf("Bearer sk-wrong-%d", r.IntN(1e6))}
			}
		case 6: // unknown paths and wrong methods
			m.kind = "path"
			m.body = []byte(valid)
			switch r.IntN(3) {
			case 0:
				m.path = fmt.Sprintf("/v1/nothing/%d", r.IntN(1000))
			case 1:
				m.method = http.MethodGet
			default:
				m.method, m.path = http.MethodDelete, "/v1/models"
			}
		case 7: // embeddings with wrong shapes
			m.kind = "embeddings"
			m.path = "/v1/embeddings"
			m.body = []byte(embWrong[r.IntN(len(embWrong))])
		default: // JSON that is not an object, or deeply nested junk
			m.kind = "not_object"
			opts := []string{`[]`, `null`, `"str"`, `123`, `true`, `{}`, strings.Repeat("[", 10000), `{"model":"gpt-4o-mini","messages":[` + strings.Repeat(`{"role":"user","content":[`, 200) + `]}`}
			m.body = []byte(opts[r.IntN(len(opts))])
		}
		out = append(out, m)
	}
	return out
}

// TestMalformedRequests sends 10,000 generated bad requests: no panic,
// every answer a 4xx in OpenAI's error shape with a request id, and the
// gateway still serves a good request afterwards.
func TestMalformedRequests(t *testing.T) {
	g := startGateway(t, mockPolicy(""), nil)
	reqs := genMalformed(10000, 42)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []string
	)
	work := make(chan int)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if msg := checkMalformed(client, g.URL, reqs[i]); msg != "" {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("#%d %s: %s", i, reqs[i].kind, msg))
					mu.Unlock()
				}
			}
		}()
	}
	for i := range reqs {
		work <- i
	}
	close(work)
	wg.Wait()
	if len(failures) > 0 {
		if len(failures) > 20 {
			failures = append(failures[:20], fmt.Sprintf("... and %d more", len(failures)-20))
		}
		t.Fatalf("%d bad answers:\n%s", len(failures), strings.Join(failures, "\n"))
	}
	if p := g.counter(t, "aigw_panics_total", nil); p != 0 {
		t.Fatalf("aigw_panics_total = %v, want 0", p)
	}
	// Still healthy.
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/chat/completions",
		strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+demoKey)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("good request after the storm: status %d", resp.StatusCode)
	}
}

func checkMalformed(c *http.Client, base string, m malformed) string {
	req, err := http.NewRequest(m.method, strings.TrimSuffix(base, "/v1")+m.path, bytes.NewReader(m.body))
	if err != nil {
		return err.Error()
	}
	for k, v := range m.header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return "transport error: " + err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "reading body: " + err.Error()
	}
	if resp.StatusCode < 400 || resp.StatusCode > 499 {
		return fmt.Sprintf("status %d, body %.200s", resp.StatusCode, body)
	}
	if resp.Header.Get("x-request-id") == "" {
		return "no x-request-id"
	}
	var e struct {
		Error map[string]json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == nil {
		return fmt.Sprintf("not an OpenAI error body: %.200s", body)
	}
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := e.Error[k]; !ok {
			return fmt.Sprintf("error body lacks %q: %.200s", k, body)
		}
	}
	var msg string
	if json.Unmarshal(e.Error["message"], &msg) != nil || msg == "" {
		return "empty error message"
	}
	return ""
}
