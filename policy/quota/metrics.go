package quota

// Metrics receives what the quota stage observes; the proxy exports it
// (aigw_quota_rejections_total{reason}, the queue depth gauge, the shared
// backend's state). Calls are made synchronously, some under a queue's
// lock: implementations must be fast and must not call back into the
// limiter.
type Metrics interface {
	// Refused counts one request refused by reason (shadow false) or one
	// request a shadow limit would have refused (shadow true; the request
	// was not refused for it).
	Refused(reason Reason, shadow bool)
	// QueueDepth reports an org's queue depth after each change.
	QueueDepth(org string, depth int)
	// SharedBackend reports, on each change, whether decisions go to the
	// shared backend (true) or to the fallback (false).
	SharedBackend(up bool)
}

type nopMetrics struct{}

func (nopMetrics) Refused(Reason, bool)   {}
func (nopMetrics) QueueDepth(string, int) {}
func (nopMetrics) SharedBackend(bool)     {}
