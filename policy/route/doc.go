// Package route decides where a request goes and what happens when an
// upstream fails before the commit point. It is a pure, in-memory library:
// no I/O, no goroutines of its own except a HealthChecker's probes, no
// package-level mutable state, and every clock and random source injected.
//
// The pieces:
//
//   - Registry keeps what must survive config reloads, keyed by target id:
//     each target's circuit breaker, EWMA of time to first byte, in-flight
//     count and health-check results, plus the ring of recent failover
//     events. The proxy builds one Registry at start and keeps it across
//     generations.
//   - Table is one model alias's routing, built per config generation from
//     Target descriptors, a Strategy, org Rules and a RetryPolicy. Its Plan
//     orders the targets for one request: capability filtering, org pins and
//     bars, the debug pin, open breakers skipped.
//   - Failover drives one request's attempts over a plan: it takes breaker
//     permits (half-open probes), counts in-flight requests, feeds outcomes
//     back, decides retry-same / retry-next / stop, computes backoff delays
//     and records failover events. The proxy does the I/O and the sleeping.
//   - HealthChecker runs consumer-supplied probes (for example a models
//     listing) on ticks the consumer supplies, feeding the same breakers.
//   - Metrics is the hook through which breaker state, up/down and failover
//     counts reach Prometheus; the package never imports a metrics library.
//
// Typical use by the proxy's failover loop:
//
//	var f route.Failover // reusable; keep one per pooled exchange
//	if err := table.Begin(&f, &x.px); err != nil {
//		return err // an *llm.Error: 400, 403 or context length
//	}
//	for {
//		i, ok := f.Next()
//		if !ok {
//			break
//		}
//		in, err := send(targets[i])
//		delay, again := f.Done(err, ttfb)
//		if err == nil {
//			return relay(in) // the commit point follows
//		}
//		if !again {
//			break
//		}
//		if delay > 0 { wait(ctx, delay) }
//	}
//	return f.Err() // a clean 502/503/504 (or the fatal client error)
package route
