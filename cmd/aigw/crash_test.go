package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// childEnv, set to 1, makes the test binary run `aigw` itself with the
// arguments after "--" (see TestMain): the crash test's gateway is a real
// process it can kill -9.
const childEnv = "AIGW_TEST_GATEWAY_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		args := os.Args[1:]
		if i := slices.Index(args, "--"); i >= 0 {
			args = args[i+1:]
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, args, os.LookupEnv, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// gatewayProcess is `aigw serve` running as a child process.
type gatewayProcess struct {
	cmd      *exec.Cmd
	pub, adm string
	out      *bytes.Buffer
	exited   chan error
}

// startGatewayProcess runs `aigw serve` on the quickstart policy (the mock
// provider: 50 ms to answer, streams of 8 chunks 20 ms apart) with the
// SQLite ledger at db, and waits until it is ready.
func startGatewayProcess(t *testing.T, db string) *gatewayProcess {
	t.Helper()
	g := &gatewayProcess{pub: freeAddr(t), adm: freeAddr(t), out: &bytes.Buffer{}, exited: make(chan error, 1)}
	g.cmd = exec.Command(os.Args[0], "-test.run=^$", "--", "serve",
		"-c", filepath.Join("..", "..", "configs", "examples", "quickstart.yaml"),
		"--listen", g.pub, "--admin-listen", g.adm, "--reload-interval", "0",
		"--ledger-dsn", "sqlite:"+db, "--log-level", "warn")
	g.cmd.Env = append(os.Environ(), childEnv+"=1")
	g.cmd.Stdout, g.cmd.Stderr = g.out, g.out
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { g.exited <- g.cmd.Wait() }()
	t.Cleanup(func() {
		_ = g.cmd.Process.Kill()
		<-g.exited
		g.exited <- nil // later waits see it exited
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + g.adm + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return g
			}
		}
		select {
		case err := <-g.exited:
			t.Fatalf("gateway exited before ready: %v\n%s", err, g.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway not ready in 20s\n%s", g.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits up to 30 s for a clean exit.
func (g *gatewayProcess) stop(t *testing.T) {
	t.Helper()
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-g.exited:
		g.exited <- nil
		if err != nil {
			t.Fatalf("gateway exited with %v\n%s", err, g.out)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("gateway did not stop")
	}
}

// request sends one chat completion, streamed or not, and returns its
// request id when the client received the whole answer: a 200 with a
// complete JSON body, or a stream that reached [DONE].
func (g *gatewayProcess) request(c *http.Client, stream bool, i int) (string, error) {
	body := fmt.Sprintf(`{"model":"gpt-4o-mini","stream":%v,"messages":[{"role":"user","content":"crash test %d"}]}`, stream, i)
	req, err := http.NewRequest(http.MethodPost, "http://"+g.pub+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer sk-aigw-demo")
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	if stream && !bytes.HasSuffix(bytes.TrimRight(b, "\n"), []byte("data: [DONE]")) {
		return "", errors.New("stream cut before [DONE]")
	}
	if !stream && !bytes.Contains(b, []byte(`"chat.completion"`)) {
		return "", fmt.Errorf("incomplete answer %q", b)
	}
	return resp.Header.Get("x-request-id"), nil
}

// TestKillGatewayLosesNoCompletedRecord runs the gateway as a child
// process under load (streams and non-stream requests on 24 connections),
// kills it with SIGKILL mid-load, starts it again on the same ledger (its
// spill is replayed at start-up), stops it, and checks that every request
// whose answer the client received whole has its usage record in SQLite.
func TestKillGatewayLosesNoCompletedRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the gateway as a child process")
	}
	db := filepath.Join(t.TempDir(), "aigw.db")
	g := startGatewayProcess(t, db)

	var (
		mu        sync.Mutex
		completed []string
		failed    int
		wg        sync.WaitGroup
	)
	stop := make(chan struct{})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}
	for w := range 24 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id, err := g.request(client, (w+i)%2 == 0, i)
				mu.Lock()
				if err == nil {
					completed = append(completed, id)
				} else {
					failed++
				}
				mu.Unlock()
			}
		})
	}
	// Load for a while, then kill without warning.
	deadline := time.Now().Add(15 * time.Second)
	for {
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		n := len(completed)
		mu.Unlock()
		if n >= 300 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d requests completed in 15s\n%s", n, g.out)
		}
	}
	if err := g.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-g.exited
	g.exited <- nil
	close(stop)
	wg.Wait()
	client.CloseIdleConnections()
	mu.Lock()
	done, cut := slices.Clone(completed), failed
	mu.Unlock()
	if cut == 0 {
		t.Log("no request was in flight at the kill")
	}
	beforeReplay := countRecords(t, db)

	// Start again on the same ledger, then stop it cleanly: the spill is
	// replayed into SQLite at start-up.
	startGatewayProcess(t, db).stop(t)

	ids := recordIDs(t, db)
	var missing []string
	for _, id := range done {
		if !ids[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d completed requests have no record after the kill, e.g. %v", len(missing), len(done), missing[:min(5, len(missing))])
	}
	t.Logf("%d requests completed before the kill, %d cut by it; %d records in SQLite right after the kill, %d after the restart",
		len(done), cut, beforeReplay, len(ids))
}

// countRecords is the number of rows in the ledger's usage_records table.
func countRecords(t *testing.T, db string) int {
	t.Helper()
	return len(recordIDs(t, db))
}

// recordIDs returns the request ids in the ledger at db.
func recordIDs(t *testing.T, db string) map[string]bool {
	t.Helper()
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.Query(`SELECT request_id FROM usage_records`)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return map[string]bool{}
		}
		t.Fatal(err)
	}
	defer rows.Close()
	ids := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		if ids[id] {
			t.Fatalf("request id %s recorded twice", id)
		}
		ids[id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}
