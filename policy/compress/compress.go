package compress

import (
	"bytes"
	"errors"
	"strconv"
	"sync"

	"github.com/aigw/aigw/providers/llm"
)

// Strategy names one compression strategy, as policy files spell it.
type Strategy string

// The strategies, in the order Compress applies them.
const (
	Whitespace          Strategy = "whitespace"
	MinifyJSON          Strategy = "minify_json"
	Dedupe              Strategy = "dedupe"
	TruncateToolResults Strategy = "truncate_tool_results"
	FitHistory          Strategy = "fit_history"
)

// numStrategies is the number of strategies; index returns 0..numStrategies-1.
const numStrategies = 5

// Strategies returns every strategy in the order Compress applies them
// (which is not the order they are listed in Options.Enabled). The slice is
// new on every call.
func Strategies() []Strategy {
	return []Strategy{Whitespace, MinifyJSON, Dedupe, TruncateToolResults, FitHistory}
}

// strategyAt is the inverse of Strategy.index.
func strategyAt(i int) Strategy {
	return [numStrategies]Strategy{Whitespace, MinifyJSON, Dedupe, TruncateToolResults, FitHistory}[i]
}

// index returns the strategy's position in Strategies, or -1 when s is not
// a strategy.
func (s Strategy) index() int {
	switch s {
	case Whitespace:
		return 0
	case MinifyJSON:
		return 1
	case Dedupe:
		return 2
	case TruncateToolResults:
		return 3
	case FitHistory:
		return 4
	}
	return -1
}

// DefaultMaxToolResultTokens is Options.MaxToolResultTokens when it is 0.
const DefaultMaxToolResultTokens = 2000

// minToolResultTokens is the smallest MaxToolResultTokens New accepts: the
// marker alone costs about a dozen tokens.
const minToolResultTokens = 64

// Options configure a Compressor. The zero value enables nothing: Compress
// then rewrites nothing and only enforces a limit the caller passes.
type Options struct {
	// Enabled lists the strategies to run. Order does not matter (they
	// always run in the order of Strategies); unknown names and repeats are
	// errors.
	Enabled []Strategy

	// PreservePrefix keeps the request's cacheable prefix byte-identical:
	// the tool schemas, response_format, the leading run of system and
	// developer messages and the PrefixMessages messages after it are never
	// rewritten or removed by whitespace, minify_json, dedupe or
	// truncate_tool_results. fit_history drops turns after the prefix first
	// and breaks into the prefix only when the request cannot fit
	// otherwise. Providers bill cached input at about a tenth, so a policy
	// should normally set it; the configs layer is expected to default it to
	// true (the Go zero value is false).
	PreservePrefix bool
	// PrefixMessages is how many messages after the leading system run
	// PreservePrefix also protects. It requires PreservePrefix.
	PrefixMessages int

	// CodeWhitespace lets whitespace also normalise inside fenced code
	// blocks, conservatively: CRLF line ends, trailing blanks and runs of
	// blank lines; indentation and blanks inside a line are never touched.
	// Without it code blocks are left byte for byte.
	CodeWhitespace bool

	// MaxToolResultTokens is the largest tool result truncate_tool_results
	// lets through, in tokens (0 means DefaultMaxToolResultTokens; at least
	// 64 otherwise). ToolResultTailTokens of it are kept from the end of
	// the result, the rest from its start (0 keeps only the head; at most
	// half of MaxToolResultTokens).
	MaxToolResultTokens  int
	ToolResultTailTokens int

	// KeepLastTurns is how many of the latest turns fit_history never drops
	// (0 means 1). The turn that starts with the last user message counts
	// as one and is always kept.
	KeepLastTurns int

	// MaxInputTokens is the policy's own cap on prompt tokens (0: none).
	// Compress enforces the smaller of it and the limit it is given.
	MaxInputTokens int
}

// DefaultOptions returns the recommended settings with no strategy enabled:
// PreservePrefix on, a 2000-token tool result limit keeping 200 tokens of
// tail, and only the current turn guaranteed by fit_history.
func DefaultOptions() Options {
	return Options{PreservePrefix: true, MaxToolResultTokens: DefaultMaxToolResultTokens, ToolResultTailTokens: 200}
}

// Counter counts tokens the way admission does. *tokens.Counter (package
// accounting/tokens) satisfies it.
//
// If the Counter also has a method Exact(model string) bool that reports
// true for a model, Compress relies on CountRequest being additive for that
// model: the request's count is the count of the request without messages
// plus, for each message m, CountRequest of a request holding only m minus
// CountRequest of an empty request; and a message's count changes by
// exactly CountText's difference when one of its texts changes. tiktoken
// counts are; Compress then never recounts the whole request. Otherwise the
// request is recounted once after it changed.
type Counter interface {
	CountRequest(model string, r *llm.Request) int
	CountText(model, s string) int
}

// exacter is the optional extension of Counter described there.
type exacter interface {
	Exact(model string) bool
}

// Compressor applies one policy's compression. It is immutable once built
// and safe for concurrent use.
type Compressor struct {
	opts    Options
	enabled uint8 // bit Strategy.index()
	counter Counter
	exact   exacter // counter's Exact, or nil
	maxTool int
	tail    int
	keep    int
	pool    sync.Pool // *run
}

// New validates o and builds a Compressor counting with c, which is
// required. Errors describe the first invalid option.
func New(o Options, c Counter) (*Compressor, error) {
	if c == nil {
		return nil, errors.New("compress: a token counter is required")
	}
	cp := &Compressor{opts: o, counter: c}
	cp.opts.Enabled = append([]Strategy(nil), o.Enabled...)
	for _, s := range o.Enabled {
		i := s.index()
		if i < 0 {
			return nil, errors.New("compress: unknown strategy " + strconv.Quote(string(s)))
		}
		if cp.enabled&(1<<i) != 0 {
			return nil, errors.New("compress: strategy " + strconv.Quote(string(s)) + " is listed twice")
		}
		cp.enabled |= 1 << i
	}
	switch {
	case o.PrefixMessages < 0:
		return nil, errors.New("compress: PrefixMessages must not be negative")
	case o.PrefixMessages > 0 && !o.PreservePrefix:
		return nil, errors.New("compress: PrefixMessages requires PreservePrefix")
	case o.MaxToolResultTokens < 0:
		return nil, errors.New("compress: MaxToolResultTokens must not be negative")
	case o.MaxToolResultTokens > 0 && o.MaxToolResultTokens < minToolResultTokens:
		return nil, errors.New("compress: MaxToolResultTokens must be at least " + strconv.Itoa(minToolResultTokens))
	case o.ToolResultTailTokens < 0:
		return nil, errors.New("compress: ToolResultTailTokens must not be negative")
	case o.KeepLastTurns < 0:
		return nil, errors.New("compress: KeepLastTurns must not be negative")
	case o.MaxInputTokens < 0:
		return nil, errors.New("compress: MaxInputTokens must not be negative")
	}
	cp.maxTool = o.MaxToolResultTokens
	if cp.maxTool == 0 {
		cp.maxTool = DefaultMaxToolResultTokens
	}
	cp.tail = o.ToolResultTailTokens
	if cp.tail > cp.maxTool/2 {
		return nil, errors.New("compress: ToolResultTailTokens must be at most half of MaxToolResultTokens")
	}
	cp.keep = max(o.KeepLastTurns, 1)
	cp.exact, _ = c.(exacter)
	cp.pool.New = func() any { return new(run) }
	return cp, nil
}

// Options returns the options the Compressor was built with.
func (c *Compressor) Options() Options {
	o := c.opts
	o.Enabled = append([]Strategy(nil), c.opts.Enabled...)
	return o
}

// Enabled reports whether strategy s is enabled.
func (c *Compressor) Enabled(s Strategy) bool {
	i := s.index()
	return i >= 0 && c.enabled&(1<<i) != 0
}

// Result reports what one Compress call did, in prompt tokens as the
// Counter counts them.
type Result struct {
	// Before and After are the request's tokens on entry and on return.
	// After is exact (see Counter) or recounted; Before is the caller's
	// figure when it passed one to CompressCounted.
	Before, After int
	// Saved holds, for each strategy that saved anything, the tokens it
	// saved; nil when none did. With an exact Counter the values add up to
	// Before-After; otherwise they are per-message estimates.
	Saved map[Strategy]int
	// Omitted is the number of messages fit_history dropped (the marker it
	// inserted is not subtracted).
	Omitted int
}

// Compress rewrites r in place with the enabled strategies and enforces
// limit, the most prompt tokens the target allows (0: no limit; the
// smaller of it and Options.MaxInputTokens applies, see Limit).
//
// r is owned by the caller's request and must not be used concurrently; its
// slices may be replaced or rewritten. Whatever the options, the last user
// message is left byte-identical, assistant tool calls and the tool results
// that answer them stay paired, and the output is a deterministic function
// of the input and the options. When no strategy is enabled and there is no
// limit Compress returns the zero Result at once, without counting.
//
// When the request is longer than the limit after every enabled strategy,
// Compress returns an *llm.Error of Kind llm.KindContextLength (HTTP 400)
// with Code "context_length_exceeded" and Param "messages", before any
// upstream is called; r may then have been rewritten partially and must not
// be sent. No other error is returned.
func (c *Compressor) Compress(model string, r *llm.Request, limit int) (Result, error) {
	return c.CompressCounted(model, r, limit, 0)
}

// CompressCounted is Compress for a caller that already counted r:
// before must be Counter.CountRequest(model, r) for r as passed, or 0 when
// unknown (Compress counts it then). It spares admission a second count of
// the whole request.
func (c *Compressor) CompressCounted(model string, r *llm.Request, limit, before int) (Result, error) {
	if c.opts.MaxInputTokens > 0 && (limit <= 0 || c.opts.MaxInputTokens < limit) {
		limit = c.opts.MaxInputTokens
	}
	if c.enabled == 0 {
		if limit <= 0 {
			return Result{Before: before, After: before}, nil
		}
		if before <= 0 {
			before = c.counter.CountRequest(model, r)
		}
		res := Result{Before: before, After: before}
		if before > limit {
			return res, tooLong(model, before, limit)
		}
		return res, nil
	}
	st := c.pool.Get().(*run)
	defer c.put(st)
	st.init(c, model, r)
	if before <= 0 {
		before = st.countBefore()
	}
	res := Result{Before: before}
	st.apply()
	total := st.total(before)
	if limit > 0 && total > limit && c.Enabled(FitHistory) {
		total = st.fit(total, limit)
	}
	res.After = total
	res.Omitted = st.omitted
	for i, n := range st.saved {
		if n > 0 {
			if res.Saved == nil {
				res.Saved = make(map[Strategy]int, numStrategies)
			}
			res.Saved[strategyAt(i)] = n
		}
	}
	if limit > 0 && total > limit {
		return res, tooLong(model, total, limit)
	}
	return res, nil
}

// Limit returns the prompt budget for one target: contextWindow minus
// reservedOutput (the client's max output tokens, or the target's default
// output cap), bounded by maxInputTokens. A non-positive contextWindow or
// maxInputTokens means that bound is absent; 0 is returned when both are.
// A window that the reserved output fills entirely yields 1, so that every
// prompt is refused rather than none.
func Limit(contextWindow, reservedOutput, maxInputTokens int) int {
	limit := 0
	if contextWindow > 0 {
		limit = max(contextWindow-max(reservedOutput, 0), 1)
	}
	if maxInputTokens > 0 && (limit == 0 || maxInputTokens < limit) {
		limit = maxInputTokens
	}
	return limit
}

// tooLong is the refusal of a prompt of n tokens over limit.
func tooLong(model string, n, limit int) *llm.Error {
	msg := "This model's maximum prompt length is " + strconv.Itoa(limit) + " tokens. However, your messages resulted in about " +
		strconv.Itoa(n) + " tokens"
	if model != "" {
		msg += " for the model `" + model + "`"
	}
	return &llm.Error{Kind: llm.KindContextLength, Code: "context_length_exceeded", Param: "messages",
		Msg: msg + ". Please reduce the length of the messages."}
}

// run is the state of one Compress call. Runs are pooled per Compressor so
// that the scratch buffers are reused; nothing in a run outlives the call.
type run struct {
	c     *Compressor
	model string
	r     *llm.Request
	exact bool

	// costs[i] is the tokens message i adds to the request (see
	// Counter), or -1 when not counted yet.
	costs []int
	base  int

	// Layout, recomputed whenever messages are removed.
	sysEnd    int // end of the leading run of system/developer messages
	prefixEnd int // messages [0, prefixEnd) are protected by PreservePrefix
	lastUser  int // index of the last user message, -1 if none
	firstTurn int // index of the first non-system message, len if none

	saved   [numStrategies]int
	changed bool
	omitted int

	probe llm.Request    // Messages is one[:] or nil; used to count one message
	one   [1]llm.Message // the probe's message
	buf   []byte         // scratch for whitespace
	src   []byte         // scratch copy of a JSON text
	out   bytes.Buffer   // scratch for json.Compact
	keys  []dupKey       // scratch for dedupe
	mark  []bool         // scratch: removed or dropped messages
	units []unit         // scratch for fit_history
	cand  []llm.Message  // scratch for fit_history
}

// put clears every reference into the request and returns st to the pool.
// Buffers that grew beyond 1 MiB are dropped rather than kept.
func (c *Compressor) put(st *run) {
	st.r, st.model = nil, ""
	st.probe = llm.Request{}
	st.one[0] = llm.Message{}
	clear(st.cand[:cap(st.cand)])
	st.cand = st.cand[:0]
	if cap(st.buf) > 1<<20 {
		st.buf = nil
	}
	if cap(st.src) > 1<<20 {
		st.src = nil
	}
	if st.out.Cap() > 1<<20 {
		st.out = bytes.Buffer{}
	}
	c.pool.Put(st)
}

func (st *run) init(c *Compressor, model string, r *llm.Request) {
	st.c, st.model, st.r = c, model, r
	st.exact = c.exact != nil && c.exact.Exact(model)
	st.saved = [numStrategies]int{}
	st.changed, st.omitted = false, 0
	st.costs = st.costs[:0]
	for range r.Messages {
		st.costs = append(st.costs, -1)
	}
	st.probe = llm.Request{}
	st.base = c.counter.CountRequest(model, &st.probe)
	st.probe.Messages = st.one[:]
	st.layout()
}

// layout computes sysEnd, prefixEnd and lastUser.
func (st *run) layout() {
	msgs := st.r.Messages
	st.sysEnd = 0
	for st.sysEnd < len(msgs) && isSystem(msgs[st.sysEnd].Role) {
		st.sysEnd++
	}
	st.prefixEnd = 0
	if st.c.opts.PreservePrefix {
		st.prefixEnd = min(st.sysEnd+st.c.opts.PrefixMessages, len(msgs))
	}
	st.firstTurn = len(msgs)
	for i := range msgs {
		if !isSystem(msgs[i].Role) {
			st.firstTurn = i
			break
		}
	}
	st.lastUser = -1
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == "user" {
			st.lastUser = i
			break
		}
	}
}

// touchable reports whether text strategies may rewrite message i.
func (st *run) touchable(i int) bool {
	return i >= st.prefixEnd && i != st.lastUser
}

// countBefore counts the request on entry: by parts with an exact counter
// (filling costs, which the strategies then reuse), whole otherwise.
func (st *run) countBefore() int {
	if !st.exact {
		return st.c.counter.CountRequest(st.model, st.r)
	}
	rest := llm.Request{Tools: st.r.Tools, ResponseFormat: st.r.ResponseFormat}
	n := st.c.counter.CountRequest(st.model, &rest)
	for i := range st.r.Messages {
		n += st.msgCost(i)
	}
	return n
}

// total returns the request's tokens after the text strategies.
func (st *run) total(before int) int {
	if !st.changed {
		return before
	}
	if st.exact {
		n := before
		for _, s := range st.saved {
			n -= s
		}
		return n
	}
	return st.c.counter.CountRequest(st.model, st.r)
}

// apply runs the enabled strategies other than fit_history, in order.
func (st *run) apply() {
	c := st.c
	if c.Enabled(Whitespace) {
		st.whitespace()
	}
	if c.Enabled(MinifyJSON) {
		st.minify()
	}
	if c.Enabled(Dedupe) {
		st.dedupe()
	}
	if c.Enabled(TruncateToolResults) {
		st.truncate()
	}
}

// msgCost returns the tokens message i adds to the request.
func (st *run) msgCost(i int) int {
	if n := st.costs[i]; n >= 0 {
		return n
	}
	n := st.costOf(&st.r.Messages[i])
	st.costs[i] = n
	return n
}

// costOf counts the tokens m would add to the request.
func (st *run) costOf(m *llm.Message) int {
	st.one[0] = *m
	n := st.c.counter.CountRequest(st.model, &st.probe) - st.base
	st.one[0] = llm.Message{}
	return max(n, 0)
}

// accept replaces message i with cand when that saves at least one token,
// crediting strategy s, and reports whether it did. A rewrite that saves
// nothing is discarded so that no byte changes for no gain.
func (st *run) accept(i int, cand *llm.Message, s Strategy) bool {
	old := st.msgCost(i)
	n := st.costOf(cand)
	if n >= old {
		return false
	}
	st.r.Messages[i] = *cand
	st.costs[i] = n
	st.saved[s.index()] += old - n
	st.changed = true
	return true
}

// credit records a saving of n tokens by s outside the messages (tools,
// response_format).
func (st *run) credit(s Strategy, n int) {
	st.saved[s.index()] += n
	st.changed = true
}

func isSystem(role string) bool { return role == "system" || role == "developer" }

// isTool reports whether the message is a tool result.
func isTool(m *llm.Message) bool { return m.Role == "tool" }

// markerPrefix starts every text aigw inserts; such texts are never
// deduplicated or compressed again.
const markerPrefix = "[aigw:"

func hasMarkerPrefix(s string) bool {
	return len(s) >= len(markerPrefix) && s[:len(markerPrefix)] == markerPrefix
}
