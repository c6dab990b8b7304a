// Package scenario decides what the fake upstreams of providertest answer,
// so that fakeopenai, fakeanthropic and fakegemini behave alike whatever
// their wire format: each fake reads its own request format into an Input,
// asks Decide, and writes the Answer in its own format.
//
// The rules make a whole tool-call round trip and image translation
// observable from a client:
//
//  1. the last turn carries tool results: the answer is text quoting them
//     (ToolResultPrefix + the results joined by "; ");
//  2. tools are offered and the last user text mentions "weather": the
//     answer is Preamble plus one call of the first tool with
//     WeatherArguments;
//  3. the last user turn holds images: "I see 1 image." / "I see N images.";
//  4. otherwise the fake's configured reply.
package scenario

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Fixed parts of the answers, for tests to assert on.
const (
	// WeatherArguments are the arguments of every tool call the fakes make.
	WeatherArguments = `{"location":"Paris","unit":"celsius"}`
	// Preamble is the text that precedes a tool call.
	Preamble = "Let me check."
	// ToolResultPrefix starts the answer to tool results.
	ToolResultPrefix = "The tool said: "
)

// Input is what a fake read from one chat request.
type Input struct {
	// Tools names the offered tools, in order.
	Tools []string
	// LastUserText is the text of the last user turn (its text parts
	// joined), "" when the last turn is not the user's.
	LastUserText string
	// ToolResults holds the contents of the tool results the last turn
	// carries, in order.
	ToolResults []string
	// Images counts the image parts of the last user turn.
	Images int
}

// Answer is what the fake says.
type Answer struct {
	// Text is the assistant's text ("" for none).
	Text string
	// ToolCall, when set, is a call of one of the offered tools.
	ToolCall *ToolCall
}

// ToolCall is a call the fake makes; Arguments is a JSON object.
type ToolCall struct {
	Name, Arguments string
}

// Decide applies the package's rules; reply is the answer of rule 4.
func Decide(in *Input, reply string) Answer {
	switch {
	case len(in.ToolResults) > 0:
		return Answer{Text: ToolResultPrefix + strings.Join(in.ToolResults, "; ")}
	case len(in.Tools) > 0 && strings.Contains(strings.ToLower(in.LastUserText), "weather"):
		return Answer{Text: Preamble, ToolCall: &ToolCall{Name: in.Tools[0], Arguments: WeatherArguments}}
	case in.Images == 1:
		return Answer{Text: "I see 1 image."}
	case in.Images > 1:
		return Answer{Text: "I see " + strconv.Itoa(in.Images) + " images."}
	}
	return Answer{Text: reply}
}

// Tokens is the fakes' token estimate of s: one token per 4 bytes, rounded
// up.
func Tokens(s string) int { return (len(s) + 3) / 4 }

// Split cuts s into n pieces of about equal rune counts (fewer when s is
// shorter; none when s is empty). n < 1 means 1.
func Split(s string, n int) []string {
	runes := utf8.RuneCountInString(s)
	if runes == 0 {
		return nil
	}
	n = max(min(n, runes), 1)
	pieces := make([]string, 0, n)
	for k := 0; k < n; k++ {
		take := runes / n
		if k < runes%n {
			take++
		}
		end := 0
		for r := 0; r < take; r++ {
			_, size := utf8.DecodeRuneInString(s[end:])
			end += size
		}
		pieces = append(pieces, s[:end])
		s = s[end:]
	}
	return pieces
}
