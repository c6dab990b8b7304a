package main

import (
	"bufio"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// floorProxy is the floor: a bare fasthttp reverse proxy that copies each
// request to the upstream and the answer back, streaming bodies of unknown
// length with a flush per read. It parses nothing and checks nothing, so it
// is the least any gateway built on fasthttp could cost.
type floorProxy struct {
	hc *fasthttp.HostClient
}

func newFloorProxy(upstream string) *floorProxy {
	return &floorProxy{hc: &fasthttp.HostClient{
		Addr:                upstream,
		MaxConns:            4096,
		ReadTimeout:         60 * time.Second,
		WriteTimeout:        60 * time.Second,
		MaxIdleConnDuration: time.Minute,
		StreamResponseBody:  true,
	}}
}

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

func (f *floorProxy) handle(ctx *fasthttp.RequestCtx) {
	req := fasthttp.AcquireRequest()
	ctx.Request.CopyTo(req)
	resp := fasthttp.AcquireResponse()
	err := f.hc.Do(req, resp)
	fasthttp.ReleaseRequest(req)
	if err != nil {
		fasthttp.ReleaseResponse(resp)
		ctx.Error("upstream: "+err.Error(), fasthttp.StatusBadGateway)
		return
	}
	resp.Header.CopyTo(&ctx.Response.Header)
	if resp.Header.ContentLength() >= 0 || resp.BodyStream() == nil {
		// Known length: read it whole (Body drains and closes the stream).
		ctx.Response.SetBody(resp.Body())
		fasthttp.ReleaseResponse(resp)
		return
	}
	// Unknown length (SSE): copy each read through with a flush. The stream
	// writer runs after the handler returns and owns resp from here on.
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		defer func() {
			_ = resp.CloseBodyStream()
			fasthttp.ReleaseResponse(resp)
		}()
		bp := copyBufPool.Get().(*[]byte)
		defer copyBufPool.Put(bp)
		buf := *bp
		r := resp.BodyStream()
		for {
			n, err := r.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return
				}
				if w.Flush() != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	})
}
