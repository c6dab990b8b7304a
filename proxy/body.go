package proxy

import (
	"bytes"
	"io"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/aigw/aigw/providers/llm"
)

// drainLimit is how much of an oversize body the gateway reads and discards
// so the client sees the 413 rather than a reset. Past it the connection is
// closed.
const drainFactor = 4

// readBody reads the request body, at most limit bytes. An oversize body is
// drained (up to drainFactor times the limit) and refused with 413.
//
// The returned slice is owned by the request and valid until the handler
// returns.
func readBody(ctx *fasthttp.RequestCtx, limit int64) ([]byte, *llm.Error) {
	tooLarge := func() *llm.Error {
		return &llm.Error{Kind: llm.KindTooLarge, Code: "request_too_large",
			Msg: "Request body is larger than the gateway's limit of " + strconv.FormatInt(limit, 10) + " bytes."}
	}
	cl := int64(ctx.Request.Header.ContentLength())
	r := ctx.RequestBodyStream()
	if r == nil {
		b := ctx.Request.Body()
		if int64(len(b)) > limit {
			return nil, tooLarge()
		}
		return b, nil
	}
	if cl > limit {
		drain(ctx, r, cl, limit)
		return nil, tooLarge()
	}
	var buf bytes.Buffer
	if cl > 0 {
		// ReadFrom wants MinRead bytes free before each read, the one that
		// finds the end included: room for exactly cl would grow again.
		buf.Grow(int(cl) + bytes.MinRead)
	}
	n, err := buf.ReadFrom(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, &llm.Error{Kind: llm.KindInvalidRequest, Msg: "Could not read the request body.", Err: err}
	}
	if n > limit {
		drain(ctx, r, -1, limit)
		return nil, tooLarge()
	}
	return buf.Bytes(), nil
}

// drain discards the rest of an oversize body so the client, still
// writing, reads the 413 instead of a connection reset. It gives up (and
// asks for the connection to be closed) past drainFactor*limit.
func drain(ctx *fasthttp.RequestCtx, r io.Reader, contentLength, limit int64) {
	max := drainFactor * limit
	if max < 1<<20 {
		max = 1 << 20
	}
	if contentLength > max {
		ctx.SetConnectionClose()
		return
	}
	n, err := io.Copy(io.Discard, io.LimitReader(r, max+1))
	if err != nil || n > max {
		ctx.SetConnectionClose()
	}
}

// bearer returns the key from "Authorization: Bearer KEY" (the scheme is
// case-insensitive), or nil.
func bearer(ctx *fasthttp.RequestCtx) []byte {
	h := ctx.Request.Header.Peek("Authorization")
	if len(h) > 7 && (bytes.EqualFold(h[:7], []byte("bearer "))) {
		return bytes.TrimSpace(h[7:])
	}
	return nil
}

// encodeSlack is what an upstream body may add to the client's (a model
// name, stream_options) before encodeRoom's estimate runs out.
const encodeSlack = 256

// encodeRoom returns an empty buffer for re-encoding a request that arrived
// as body: about as long, so the encoder fills it without growing it step
// by step (which was five allocations a request).
func encodeRoom(body []byte) []byte { return make([]byte, 0, len(body)+encodeSlack) }
