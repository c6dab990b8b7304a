// Package anthropic translates between aigw's canonical (OpenAI-shaped) chat
// types and Anthropic's Messages API, in both directions:
//
//   - Adapter turns a canonical request into a POST /v1/messages request,
//     and Anthropic's answers (JSON bodies, SSE streams, error bodies) back
//     into canonical values. It is what the proxy uses when an upstream is
//     Anthropic.
//   - DecodeMessagesRequest, EncodeMessagesResponse, StreamEncoder and
//     EncodeError are the Anthropic-native front: they let clients that speak
//     the Messages API (POST /v1/messages to the gateway) be served by any
//     upstream.
//
// The package is translation only: it does no I/O, keeps no package-level
// state, and depends on the standard library, providers/llm and
// providers/sse only. Wire facts follow Anthropic's documentation of the
// Messages API, its streaming events and its errors.
//
// # Translation choices
//
// OpenAI's chat format and Anthropic's Messages API do not map one to one.
// Where they differ, EncodeChat does the following:
//
//   - system and developer messages, wherever they appear, are hoisted into
//     the top-level system field in order: a single string when there is one
//     text, text blocks otherwise.
//   - consecutive messages that map to the same Anthropic role are merged
//     into one turn (Anthropic requires user and assistant turns to
//     alternate); tool messages become tool_result blocks of a user turn.
//   - empty text blocks are left out (Anthropic refuses them): an assistant
//     turn with content "" and tool calls carries only tool_use blocks.
//   - max_tokens is required by Anthropic: max_completion_tokens, else
//     max_tokens, else Target.DefaultMaxTokens, else 4096.
//   - refused with an *llm.Error of kind KindInvalidRequest naming the
//     parameter: n > 1, temperature outside [0, 1], response_format
//     json_object and json_schema (Anthropic's output_config.format is not
//     used yet, so that a client asking for JSON never silently gets prose),
//     tool_call arguments that are not a JSON object, message roles and
//     content parts Anthropic cannot express (audio, files other than
//     base64 PDFs, file ids).
//   - dropped, because Anthropic has no equivalent and they do not change
//     the shape of the answer: seed, message names, image detail, logprobs,
//     frequency and presence penalties, and every other field of
//     llm.Request.Extra except parallel_tool_calls (mapped to
//     disable_parallel_tool_use) and top_k (passed through).
//
// Answers keep Anthropic's message id ("msg_...") as the completion id so
// that logs can be matched with Anthropic's; Created is the time the answer
// was decoded (Adapter.Now). Usage follows llm.Usage's OpenAI convention:
// Anthropic's input_tokens exclude cache reads and writes, so PromptTokens =
// input_tokens + cache_read_input_tokens + cache_creation_input_tokens,
// CachedTokens = cache_read_input_tokens and CacheWriteTokens =
// cache_creation_input_tokens.
package anthropic
