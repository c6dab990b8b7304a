package main

import (
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestClientRequestIDKeepsEveryRecord: a client that sends the same
// x-request-id on several requests (a retry loop, a tracing id reused per
// session) gets its id echoed on each answer, and the ledger keeps one row
// per request, each under its own gateway id and each with the client's id:
// every one of them reached the upstream and is billed.
func TestClientRequestIDKeepsEveryRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the gateway as a child process")
	}
	db := t.TempDir() + "/aigw.db"
	g := startGatewayProcess(t, db)
	const clientID = "trace-7f3a"
	for i, stream := range []bool{false, false, true} {
		body := fmt.Sprintf(`{"model":"gpt-4o-mini","stream":%v,"messages":[{"role":"user","content":"same id %d"}]}`, stream, i)
		req, err := http.NewRequest(http.MethodPost, "http://"+g.pub+"/v1/chat/completions", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer sk-aigw-demo")
		req.Header.Set("X-Request-Id", clientID)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, b)
		}
		if got := resp.Header.Get("x-request-id"); got != clientID {
			t.Fatalf("request %d: x-request-id %q, want the client's %q", i, got, clientID)
		}
	}
	g.stop(t)

	conn, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.Query(`SELECT request_id, client_request_id, stream FROM usage_records`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	ids := map[string]bool{}
	streams := 0
	for rows.Next() {
		var id, client string
		var stream bool
		if err := rows.Scan(&id, &client, &stream); err != nil {
			t.Fatal(err)
		}
		if client != clientID || id == clientID || ids[id] {
			t.Fatalf("row request_id %q client_request_id %q (ids so far %v)", id, client, ids)
		}
		ids[id] = true
		if stream {
			streams++
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(ids) != 3 || streams != 1 {
		t.Fatalf("%d rows (%d streams) for 3 requests with one client id", len(ids), streams)
	}
}
