// Package gemini is aigw's adapter for Google's Gemini API (the v1beta REST
// surface at generativelanguage.googleapis.com): chat completions through
// models.generateContent and models.streamGenerateContent?alt=sse, and
// embeddings through models.embedContent and models.batchEmbedContents.
//
// The adapter translates between aigw's canonical, OpenAI-shaped types
// (package llm) and Gemini's wire format. It does no I/O and keeps no
// mutable state: an *Adapter is safe for concurrent use; a *StreamDecoder
// serves one stream.
//
// Choices worth knowing, documented on the functions that make them:
//
//   - Gemini has no tool call ids. Answers get deterministic ids
//     ("call_" + a hash of the call), which may carry the call's thought
//     signature so that the next request can hand it back (Gemini 3 models
//     require it); see toolCallID and EncodeChat.
//   - Tool results pair with calls by function name, found from the
//     assistant message that made the call with the same id.
//   - Tool parameters and json_schema response formats are sent as JSON
//     Schema (parametersJsonSchema, responseJsonSchema), not as Google's
//     OpenAPI subset.
//   - Usage follows llm.Usage's conventions: cached tokens are part of the
//     prompt, thought tokens part of the completion.
//   - Errors are *llm.Error values; ClassifyError reads Google's
//     google.rpc.Status envelope, including RetryInfo retry delays.
package gemini
