package proxy

import (
	"encoding/json"
	"sort"
	"time"

	"github.com/valyala/fasthttp"
)

// priorityOrg is one org in the wedding-day-mode answers.
type priorityOrg struct {
	Org    string `json:"org"`
	Active bool   `json:"active"`
	// Until is when the run-time mode ends (RFC 3339), empty when none
	// was started through this API.
	Until string `json:"until,omitempty"`
	// RemainingSeconds is how long the run-time mode still lasts.
	RemainingSeconds int64 `json:"remaining_seconds,omitempty"`
}

// priorityRequest is POST /api/ai/wedding-day-mode's body.
type priorityRequest struct {
	Org string `json:"org"`
	// Duration is a Go duration ("24h", "90m"); empty: the org's
	// priority_mode.duration, else 24h.
	Duration string `json:"duration"`
}

// maxPriorityDuration bounds a run-time priority mode: it is meant for a
// critical day, not as a permanent tier change.
const maxPriorityDuration = 7 * 24 * time.Hour

// weddingDayMode serves /api/ai/wedding-day-mode: GET lists the orgs'
// run-time priority modes, POST {"org","duration"} starts one, DELETE
// ?org= ends one. Modes apply to this replica and end on their own; a mode
// set in policy (priority_mode.until) is not changed here.
func (s *Server) weddingDayMode(ctx *fasthttp.RequestCtx) {
	rt := s.rt.Load()
	switch string(ctx.Method()) {
	case fasthttp.MethodGet:
		orgs := make([]string, 0, len(rt.quota.priorityDuration))
		for o := range rt.quota.priorityDuration {
			orgs = append(orgs, o)
		}
		sort.Strings(orgs)
		out := make([]priorityOrg, 0, len(orgs))
		for _, o := range orgs {
			out = append(out, s.priorityState(o))
		}
		adminData(ctx, map[string]any{"orgs": out})
	case fasthttp.MethodPost:
		var req priorityRequest
		if err := json.Unmarshal(ctx.PostBody(), &req); err != nil {
			adminError(ctx, fasthttp.StatusBadRequest, "The body must be JSON: {\"org\":\"...\",\"duration\":\"24h\"}.")
			return
		}
		def, ok := rt.quota.priorityDuration[req.Org]
		if !ok {
			adminError(ctx, fasthttp.StatusNotFound, "No org "+quoteClip(req.Org)+" is declared in the policy.")
			return
		}
		d := def
		if req.Duration != "" {
			v, err := time.ParseDuration(req.Duration)
			if err != nil || v <= 0 || v > maxPriorityDuration {
				adminError(ctx, fasthttp.StatusBadRequest, "duration must be a positive duration of at most 168h, such as \"24h\".")
				return
			}
			d = v
		}
		until := s.quota.StartPriorityMode(req.Org, d)
		s.log.Info("priority mode started", "org", req.Org, "until", stamp(until))
		adminData(ctx, s.priorityState(req.Org))
	case fasthttp.MethodDelete:
		org := string(ctx.QueryArgs().Peek("org"))
		if _, ok := rt.quota.priorityDuration[org]; !ok {
			adminError(ctx, fasthttp.StatusNotFound, "No org "+quoteClip(org)+" is declared in the policy.")
			return
		}
		s.quota.StopPriorityMode(org)
		s.log.Info("priority mode stopped", "org", org)
		adminData(ctx, s.priorityState(org))
	default:
		ctx.Response.Header.Set("Allow", "GET, POST, DELETE")
		adminError(ctx, fasthttp.StatusMethodNotAllowed, "Use GET, POST or DELETE.")
	}
}

func (s *Server) priorityState(org string) priorityOrg {
	p := priorityOrg{Org: org}
	if u := s.quota.PriorityUntil(org); !u.IsZero() {
		if left := u.Sub(s.quotaClock.Now()); left > 0 {
			p.Active, p.Until, p.RemainingSeconds = true, stamp(u), int64(left.Round(time.Second)/time.Second)
		}
	}
	return p
}

func quoteClip(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// adminData answers {"success":true,"data":data}.
func adminData(ctx *fasthttp.RequestCtx, data any) {
	body, err := json.Marshal(struct {
		Success bool `json:"success"`
		Data    any  `json:"data"`
	}{true, data})
	if err != nil {
		ctx.SetStatusCode(fasthttp.StatusInternalServerError)
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}

// adminError answers {"success":false,"message":msg} with status.
func adminError(ctx *fasthttp.RequestCtx, status int, msg string) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(appendJSONMessage(nil, false, msg))
}
