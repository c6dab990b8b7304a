package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // reads the ledger the gateway wrote
)

func runCLI(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(ctx, args, os.LookupEnv, &out, &errb)
	return code, out.String(), errb.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, context.Background(), "version")
	if code != 0 || !strings.HasPrefix(out, "aigw ") {
		t.Fatalf("version: %d %q", code, out)
	}
}

func TestValidate(t *testing.T) {
	for _, f := range []string{"quickstart.yaml", "openai.yaml", "tiers.yaml", "multi-provider.yaml"} {
		code, out, errs := runCLI(t, context.Background(), "validate", filepath.Join("..", "..", "configs", "examples", f))
		if code != 0 || !strings.Contains(out, "ok") {
			t.Errorf("%s: exit %d, %s %s", f, code, out, errs)
		}
	}
	dir := t.TempDir()
	bad := "providers:\n  - id: p\n    type: nope\n    bogus: 1\nmodels: []\n"
	if err := os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCLI(t, context.Background(), "validate", dir)
	if code != 1 {
		t.Fatalf("bad policy: exit %d, want 1", code)
	}
	lines := regexp.MustCompile(`(?m)^\S*a\.yaml:\d+: `).FindAllString(errs, -1)
	if len(lines) < 2 {
		t.Fatalf("want every problem as file:line, got:\n%s", errs)
	}
}

func TestKeysNew(t *testing.T) {
	code, out, _ := runCLI(t, context.Background(), "keys", "new", "--id", "app", "--org", "demo")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	key := regexp.MustCompile(`key:\s+(sk-aigw-\S+)`).FindStringSubmatch(out)
	hash := regexp.MustCompile(`sha256:\s+([0-9a-f]{64})`).FindStringSubmatch(out)
	if key == nil || hash == nil {
		t.Fatalf("output: %s", out)
	}
	sum := sha256.Sum256([]byte(key[1]))
	if hex.EncodeToString(sum[:]) != hash[1] {
		t.Fatal("printed hash is not the key's sha256")
	}
	if code2, out2, _ := runCLI(t, context.Background(), "keys", "new"); code2 != 0 || out2 == out {
		t.Fatal("keys new printed the same key twice")
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestServeQuickstart runs `aigw serve` on the shipped quickstart policy,
// with the public listener from the flag and the admin one from the
// environment, answers a request through the mock provider, and stops on
// cancellation (as on SIGTERM).
func TestServeQuickstart(t *testing.T) {
	pub, adm := freeAddr(t), freeAddr(t)
	dbPath := filepath.Join(t.TempDir(), "ledger", "aigw.db")
	t.Setenv("AIGW_ADMIN_LISTEN", adm)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		code, _, _ := runCLI(t, ctx, "serve", "-c", filepath.Join("..", "..", "configs", "examples", "quickstart.yaml"),
			"--listen", pub, "--reload-interval", "0", "--ledger-dsn", "sqlite:"+dbPath)
		done <- code
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + adm + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("gateway not ready in 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+pub+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer sk-aigw-demo")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "chat.completion") {
		t.Fatalf("quickstart answer: %d %s", resp.StatusCode, b)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
	// The request left its usage record in the ledger.
	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var org, model, outcome string
	var total, n int
	if err := db.QueryRow(`SELECT org, model_alias, outcome, total_tokens, (SELECT count(*) FROM usage_records) FROM usage_records`).
		Scan(&org, &model, &outcome, &total, &n); err != nil {
		t.Fatalf("usage record: %v", err)
	}
	if n != 1 || org != "demo" || model != "gpt-4o-mini" || outcome != "ok" || total <= 0 {
		t.Fatalf("usage record: %d rows, org %q model %q outcome %q tokens %d", n, org, model, outcome, total)
	}
}
