// Package compress is the admission stage that shortens chat requests
// deterministically, before they are cached, routed and sent: it rewrites
// the canonical llm.Request in place, reports the tokens each strategy
// saved, and refuses (400 context_length_exceeded) a request that is still
// longer than its target allows.
//
// # Strategies
//
// Every strategy is opt-in (Options.Enabled); the zero Options rewrite
// nothing. Enabled strategies always run in this order, whatever the order
// they are listed in:
//
//   - whitespace: normalises message text outside fenced code blocks (CRLF,
//     trailing blanks, runs of blank lines and of blanks, long separator
//     lines; see normalizeText). Code blocks are left byte for byte unless
//     Options.CodeWhitespace.
//   - minify_json: json.Compact of tool parameter schemas, response_format,
//     JSON tool results and tool call arguments. Key order and values are
//     kept exactly; only insignificant white space goes.
//   - dedupe: removes repeated system prompts (the first stays), earlier
//     copies of long user and assistant messages (the last stays), and
//     replaces earlier copies of long tool results by a reference to the
//     later one (the tool message itself stays, so tool calls stay paired).
//   - truncate_tool_results: cuts tool results over
//     Options.MaxToolResultTokens to head, a marker naming the tokens cut,
//     and optionally tail.
//   - fit_history: when the request is over the limit, drops the oldest
//     whole turns (tool-call groups together), keeping every system
//     message and the latest turns, and puts one user note "[aigw: N earlier
//     messages were omitted to fit the context window]" in their place.
//
// # Invariants
//
// The last user message is byte-identical after Compress, always: no
// strategy rewrites or removes it. Turns after it (an agent's tool calls
// and results of the current turn) are never removed; their text may be
// normalised, minified or truncated. A rewrite of a message is kept only
// if it saves at least one token, so no byte changes for nothing. Texts
// the package inserts start with "[aigw:" and are never compressed again.
// The result is a deterministic function of the request and the options,
// and compressing it again (with the same options and limit) changes
// nothing.
//
// With Options.PreservePrefix, the cacheable prefix (tools,
// response_format, the leading system messages and PrefixMessages more) is
// left byte-identical by every strategy but fit_history, which breaks into
// it only when nothing else makes the request fit: providers bill cached
// prompt tokens at about a tenth, so minifying a cached prefix usually
// costs more than it saves.
//
// # Counting
//
// Tokens are counted with a Counter (*tokens.Counter in production),
// message by message: a strategy counts only the messages it changes, and
// with a counter that is exact for the model (tiktoken models) the request
// is never counted whole again; the proxy can pass the admission estimate
// to CompressCounted so that it is not counted whole even once.
//
// # Use
//
//	c, err := compress.New(opts, counter)                   // per policy generation
//	limit := compress.Limit(target.ContextWindow, maxOut, 0) // per request and target
//	res, err := c.CompressCounted(model, x.Chat, limit, x.EstimatedPromptTokens)
//	if err != nil { return err }                             // *llm.Error, 400 context_length_exceeded
//	x.EstimatedPromptTokens = res.After
package compress
