package openai

import (
	"bytes"

	"github.com/aigw/aigw/providers/llm"
)

// Frame is what Observe learned about one streamed chunk.
type Frame struct {
	// Done is set for the terminal "[DONE]".
	Done bool
	// UsageOnly is set for the final usage chunk: usage set and choices
	// empty ("choices":[], as OpenAI sends it), null or absent.
	UsageOnly bool
	// Usage is the chunk's usage; HasUsage says it had a non-null one.
	Usage    llm.Usage
	HasUsage bool
	// Content is set when some choice carries something for the client: a
	// finish_reason, or a delta member other than role with a non-empty
	// value (content, refusal, tool_calls, and also reasoning_content,
	// function_call, audio, ...). The role-only first chunk, whose content
	// is "", is not content.
	Content bool
	// Err is set for an error object ({"error":{...}}) instead of a chunk.
	Err bool
}

// Observe inspects the data of one OpenAI stream event without decoding it:
// it walks the JSON structure byte by byte and decodes only the usage
// object's integers. It does not allocate and does not validate: data that
// is not a JSON object yields a zero Frame (Done aside), and malformed JSON
// yields what was learned before the damage. An event named "error" is not
// seen here; check the event name.
func Observe(data []byte) Frame {
	var f Frame
	i := skipWS(data, 0)
	if i < len(data) && data[i] == '[' && bytes.HasPrefix(data[i:], []byte("[DONE]")) &&
		skipWS(data, i+6) == len(data) {
		f.Done = true
		return f
	}
	choices := 0 // 0 absent or null, 1 empty, 2 non-empty
	walkObject(data, i, func(key []byte, v int) int {
		switch string(key) {
		case "choices":
			if data[v] == '[' {
				choices = 1
				return walkArray(data, v, func(e int) int {
					choices = 2
					if data[e] != '{' {
						return skipValue(data, e)
					}
					end, content := observeChoice(data, e)
					f.Content = f.Content || content
					return end
				})
			}
		case "usage":
			if data[v] == '{' {
				var end int
				f.Usage, end = parseUsage(data, v)
				f.HasUsage = end >= 0
				return end
			}
		case "error":
			if data[v] != 'n' {
				f.Err = true
			}
		}
		return skipValue(data, v)
	})
	f.UsageOnly = f.HasUsage && choices < 2
	return f
}

// observeChoice walks the choice object at b[i] and reports its end and
// whether it carries something for the client.
func observeChoice(b []byte, i int) (int, bool) {
	found := false
	end := walkObject(b, i, func(key []byte, v int) int {
		switch string(key) {
		case "finish_reason":
			found = found || b[v] != 'n'
		case "delta":
			if b[v] == '{' {
				return walkObject(b, v, func(k []byte, dv int) int {
					dend := skipValue(b, dv)
					if dend >= 0 && string(k) != "role" && nonEmpty(b[dv:dend]) {
						found = true
					}
					return dend
				})
			}
		}
		return skipValue(b, v)
	})
	return end, found
}

// nonEmpty reports whether a JSON value is a non-empty string, array or
// object.
func nonEmpty(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	switch v[0] {
	case '"':
		return len(v) > 2
	case '[', '{':
		return skipWS(v, 1) < len(v)-1
	}
	return false
}

// parseUsage reads OpenAI's usage object at b[i] and returns it with its
// end (-1 if malformed).
func parseUsage(b []byte, i int) (llm.Usage, int) {
	var u llm.Usage
	end := walkObject(b, i, func(key []byte, v int) int {
		end := skipValue(b, v)
		if end < 0 {
			return end
		}
		switch string(key) {
		case "prompt_tokens":
			u.PromptTokens = atoi(b[v:end])
		case "completion_tokens":
			u.CompletionTokens = atoi(b[v:end])
		case "total_tokens":
			u.TotalTokens = atoi(b[v:end])
		case "prompt_tokens_details":
			walkObject(b, v, func(k []byte, dv int) int {
				dend := skipValue(b, dv)
				if dend >= 0 && string(k) == "cached_tokens" {
					u.CachedTokens = atoi(b[dv:dend])
				}
				return dend
			})
		case "completion_tokens_details":
			walkObject(b, v, func(k []byte, dv int) int {
				dend := skipValue(b, dv)
				if dend >= 0 && string(k) == "reasoning_tokens" {
					u.ReasoningTokens = atoi(b[dv:dend])
				}
				return dend
			})
		}
		return end
	})
	if u.TotalTokens == 0 {
		u.TotalTokens = u.PromptTokens + u.CompletionTokens
	}
	return u, end
}

// atoi parses a non-negative integer literal; anything else is 0.
func atoi(b []byte) int {
	if len(b) == 0 || len(b) > 18 {
		return 0
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// StripNullUsage appends data to dst without its top-level "usage":null
// member (and the comma that separated it), and returns the extended slice.
// OpenAI adds "usage":null to every chunk once stream_options.include_usage
// is set, which the gateway always sets upstream; a client that did not ask
// must not see it. Data without such a member is appended unchanged. It
// allocates only when dst lacks capacity.
func StripNullUsage(dst, data []byte) []byte {
	// Fast path: OpenAI writes usage among the last members, compactly.
	// A ,"usage":null match is always structural (a '"' inside a string is
	// escaped); it is a top-level member when what follows it are members
	// closing the object at the end of data.
	const member = `,"usage":null`
	if bytes.HasSuffix(data, []byte(member+"}")) {
		dst = append(dst, data[:len(data)-len(member)-1]...)
		return append(dst, '}')
	}
	// Chunks from OpenAI-compatible servers that ignore stream_options
	// carry no usage at all: one forward search settles them. (It is
	// vectorised; bytes.LastIndex is not, and took 500 ns instead of 67 on
	// a 300-byte chunk, BenchmarkStripNullUsageAbsent.)
	first := bytes.Index(data, []byte(`"usage"`))
	if first < 0 {
		return append(dst, data...)
	}
	// A top-level ,"usage":null followed by other members: the first match
	// whose tail closes the object (a nested one is followed by a closing
	// bracket of its own, so it cannot pass).
	for off := max(first-1, 0); ; {
		k := bytes.Index(data[off:], []byte(member))
		if k < 0 {
			break
		}
		k += off
		if tailClosesObject(data, k+len(member)) {
			dst = append(dst, data[:k]...)
			return append(dst, data[k+len(member):]...)
		}
		off = k + len(member)
	}
	cut0, cut1 := -1, -1
	prevEnd := -1 // end of the previous member's value
	walkObject(data, skipWS(data, 0), func(key []byte, v int) int {
		end := skipValue(data, v)
		if end < 0 {
			return end
		}
		if string(key) == "usage" && string(data[v:end]) == "null" {
			if prevEnd >= 0 {
				// ...,"usage":null -> drop from the end of the previous
				// value through null.
				cut0, cut1 = prevEnd, end
			} else {
				// {"usage":null, ...} -> drop from the key through the
				// comma (and spaces) after null, or to the '}' if alone.
				cut0 = keyStart(data, v)
				j := skipWS(data, end)
				if j < len(data) && data[j] == ',' {
					j = skipWS(data, j+1)
				}
				cut1 = j
			}
			return -1
		}
		prevEnd = end
		return end
	})
	if cut0 < 0 {
		return append(dst, data...)
	}
	dst = append(dst, data[:cut0]...)
	return append(dst, data[cut1:]...)
}

// tailClosesObject reports whether b[i:] is zero or more ,"key":value
// members followed by the '}' that ends b.
func tailClosesObject(b []byte, i int) bool {
	for {
		i = skipWS(b, i)
		if i >= len(b) {
			return false
		}
		if b[i] == '}' {
			return skipWS(b, i+1) == len(b)
		}
		if b[i] != ',' {
			return false
		}
		i = skipWS(b, i+1)
		if i >= len(b) || b[i] != '"' {
			return false
		}
		if i = skipString(b, i); i < 0 {
			return false
		}
		i = skipWS(b, i)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		if i = skipValue(b, skipWS(b, i+1)); i < 0 {
			return false
		}
	}
}

// keyStart finds the opening quote of the key whose value starts at v.
func keyStart(b []byte, v int) int {
	i := v - 1
	for i >= 0 && b[i] != ':' {
		i--
	}
	// Walk back over white space and the key string.
	i--
	for i >= 0 && isWS(b[i]) {
		i--
	}
	// b[i] is the key's closing quote; find its opening quote.
	for i--; i >= 0; i-- {
		if b[i] == '"' && !escaped(b, i) {
			return i
		}
	}
	return 0
}

// ---- a small non-validating JSON walker ----

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipWS(b []byte, i int) int {
	for i < len(b) && isWS(b[i]) {
		i++
	}
	return i
}

// escaped reports whether the quote at b[i] is escaped (preceded by an odd
// number of backslashes).
func escaped(b []byte, i int) bool {
	n := 0
	for j := i - 1; j >= 0 && b[j] == '\\'; j-- {
		n++
	}
	return n%2 == 1
}

// skipString returns the index after the string starting at b[i] (a '"'),
// or -1 if it does not end. A byte loop beats bytes.IndexByte here: keys
// and most chunk strings are a few bytes long.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '"':
			return i + 1
		case '\\':
			i++
		}
	}
	return -1
}

// skipValue returns the index after the value starting at b[i], or -1.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				if i < 0 {
					return -1
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	}
	// A number or a literal runs to the next delimiter.
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// walkObject calls fn for each member of the object at b[i] with the key
// (raw, without quotes) and the start of the value; fn returns the end of
// the value (usually skipValue's), or -1 to stop. walkObject returns the
// end of the object, or -1 when stopped or malformed.
func walkObject(b []byte, i int, fn func(key []byte, v int) int) int {
	if i >= len(b) || b[i] != '{' {
		return -1
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1
	}
	for i < len(b) && b[i] == '"' {
		ke := skipString(b, i)
		if ke < 0 {
			return -1
		}
		key := b[i+1 : ke-1]
		i = skipWS(b, ke)
		if i >= len(b) || b[i] != ':' {
			return -1
		}
		v := skipWS(b, i+1)
		if v >= len(b) {
			return -1
		}
		end := fn(key, v)
		if end < 0 {
			return -1
		}
		i = skipWS(b, end)
		if i < len(b) && b[i] == '}' {
			return i + 1
		}
		if i >= len(b) || b[i] != ',' {
			return -1
		}
		i = skipWS(b, i+1)
	}
	return -1
}

// walkArray calls fn with the start of each element of the array at b[i];
// fn returns the element's end, or -1 to stop. walkArray returns the end of
// the array, or -1.
func walkArray(b []byte, i int, fn func(v int) int) int {
	if i >= len(b) || b[i] != '[' {
		return -1
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1
	}
	for i < len(b) {
		end := fn(i)
		if end < 0 {
			return -1
		}
		i = skipWS(b, end)
		if i < len(b) && b[i] == ']' {
			return i + 1
		}
		if i >= len(b) || b[i] != ',' {
			return -1
		}
		i = skipWS(b, i+1)
	}
	return -1
}
