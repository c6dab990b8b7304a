// Package llm holds the canonical, provider-neutral types of aigw: the request
// a client sent, the answer an upstream gave, stream deltas, token usage and the
// one error type every layer returns.
//
// It depends on the standard library only. Values are plain data: none of them
// is safe for concurrent mutation, and none holds a reference to a network
// buffer, so they may outlive the request that produced them.
package llm
