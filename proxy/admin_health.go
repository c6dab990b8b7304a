package proxy

import (
	"time"

	"github.com/valyala/fasthttp"
)

// healthTarget is one target in GET /api/ai/providers/health.
type healthTarget struct {
	ID                  string  `json:"id"`
	Provider            string  `json:"provider"`
	State               string  `json:"state"`
	Up                  bool    `json:"up"`
	OpenUntil           string  `json:"open_until,omitempty"`
	ConsecutiveFailures int     `json:"consecutive_failures"`
	Requests            int     `json:"requests"`
	ErrorRate           float64 `json:"error_rate"`
	InFlight            int64   `json:"in_flight"`
	TTFBMs              float64 `json:"ttfb_ms"`
	LastCheck           string  `json:"last_check,omitempty"`
	CheckLatencyMs      float64 `json:"check_latency_ms"`
	CheckError          string  `json:"check_error,omitempty"`
}

// healthEvent is one failover run in GET /api/ai/providers/health.
type healthEvent struct {
	Time       string  `json:"time"`
	Last       string  `json:"last"`
	From       string  `json:"from"`
	To         string  `json:"to"`
	Reason     string  `json:"reason"`
	Status     int     `json:"status,omitempty"`
	Requests   int     `json:"requests_affected"`
	Recovered  string  `json:"recovered,omitempty"`
	RecoveryMs float64 `json:"recovery_ms,omitempty"`
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// providersHealth answers GET /api/ai/providers/health: every target's
// breaker and health state and the ring of recent failover events.
func (s *Server) providersHealth(ctx *fasthttp.RequestCtx) {
	var data struct {
		Targets   []healthTarget `json:"targets"`
		Failovers []healthEvent  `json:"failovers"`
	}
	data.Targets = []healthTarget{}
	data.Failovers = []healthEvent{}
	for _, st := range s.routes.Snapshot() {
		h := healthTarget{ID: st.ID, Provider: st.Provider, State: st.State.String(), Up: st.Up,
			ConsecutiveFailures: st.ConsecutiveFailures, Requests: st.Requests, ErrorRate: st.ErrorRate,
			InFlight: st.InFlight, TTFBMs: ms(st.TTFB), LastCheck: stamp(st.LastCheck),
			CheckLatencyMs: ms(st.CheckLatency), CheckError: st.CheckError}
		if st.State.String() != "closed" {
			h.OpenUntil = stamp(st.OpenUntil)
		}
		data.Targets = append(data.Targets, h)
	}
	for _, e := range s.routes.Events(nil) {
		data.Failovers = append(data.Failovers, healthEvent{Time: stamp(e.Time), Last: stamp(e.Last), From: e.From,
			To: e.To, Reason: e.Reason, Status: e.Status, Requests: e.Requests, Recovered: stamp(e.Recovered),
			RecoveryMs: ms(e.Recovery())})
	}
	adminData(ctx, data)
}
