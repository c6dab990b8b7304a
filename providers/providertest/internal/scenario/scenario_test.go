package scenario

import (
	"reflect"
	"strings"
	"testing"
)

func TestDecide(t *testing.T) {
	for _, c := range []struct {
		name string
		in   Input
		want Answer
	}{
		{"plain", Input{LastUserText: "hi"}, Answer{Text: "R"}},
		{"weather without tools", Input{LastUserText: "What's the weather?"}, Answer{Text: "R"}},
		{"weather with tools", Input{Tools: []string{"get_weather", "other"}, LastUserText: "Weather in Paris?"},
			Answer{Text: Preamble, ToolCall: &ToolCall{Name: "get_weather", Arguments: WeatherArguments}}},
		{"tool results win", Input{Tools: []string{"get_weather"}, LastUserText: "weather", ToolResults: []string{"21C", "sunny"}},
			Answer{Text: ToolResultPrefix + "21C; sunny"}},
		{"one image", Input{LastUserText: "what is it", Images: 1}, Answer{Text: "I see 1 image."}},
		{"two images", Input{Images: 2}, Answer{Text: "I see 2 images."}},
	} {
		if got := Decide(&c.in, "R"); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestSplit(t *testing.T) {
	for _, c := range []struct {
		s    string
		n    int
		want []string
	}{
		{"", 3, nil},
		{"abcdef", 3, []string{"ab", "cd", "ef"}},
		{"abcde", 2, []string{"abc", "de"}},
		{"héllo", 10, []string{"h", "é", "l", "l", "o"}},
		{"abc", 0, []string{"abc"}},
	} {
		got := Split(c.s, c.n)
		if !reflect.DeepEqual(got, c.want) || strings.Join(got, "") != c.s {
			t.Errorf("Split(%q, %d) = %q, want %q", c.s, c.n, got, c.want)
		}
	}
	if Tokens("") != 0 || Tokens("abcde") != 2 {
		t.Error("Tokens")
	}
}
