package providertest

import (
	"bytes"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/aigw/aigw/providers/llm"
	"github.com/aigw/aigw/providers/sse"
)

func readOptional(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// runGarbage feeds mutated fixtures and random bytes to every decoder: none
// may panic, and every error must be an *llm.Error. The inputs come from a
// fixed seed, so a failure reproduces.
func runGarbage[D StreamDecoder](t *testing.T, c *Case[D]) {
	rng := rand.New(rand.NewPCG(0x616967, 0x7077))
	var fixtures [][]byte
	var names [][]byte
	var datas [][]byte
	seen := map[string]bool{}
	for _, n := range []string{"", "message", "error", "ping", "done", "[DONE]"} {
		seen[n] = true
		names = append(names, []byte(n))
	}
	_ = filepath.WalkDir(c.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		fixtures = append(fixtures, b)
		if filepath.Ext(path) == ".sse" {
			sc := sse.NewScanner(bytes.NewReader(b), c.MaxEventBytes)
			for sc.Next() {
				ev := sc.Event()
				if !seen[string(ev.Name)] {
					seen[string(ev.Name)] = true
					names = append(names, slices.Clone(ev.Name))
				}
				datas = append(datas, slices.Clone(ev.Data))
			}
		}
		return nil
	})
	statuses := []int{0, 200, 400, 401, 403, 404, 408, 413, 429, 500, 502, 503, 504, 529, 999, -1}

	for round := 0; round < c.GarbageRounds; round++ {
		in := garbageInput(rng, fixtures)
		guard(t, "DecodeChat", in, func() {
			_, err := c.Adapter.DecodeChat(in)
			checkLLMError(t, "DecodeChat", in, err)
		})
		guard(t, "DecodeEmbeddings", in, func() {
			_, err := c.Adapter.DecodeEmbeddings(in)
			checkLLMError(t, "DecodeEmbeddings", in, err)
		})
		status := statuses[rng.IntN(len(statuses))]
		hdr := string(garbageInput(rng, nil))
		guard(t, "ClassifyError", in, func() {
			err := c.Adapter.ClassifyError(status, func(string) string { return hdr }, in)
			if err == nil {
				t.Errorf("ClassifyError(%d, %q) = nil", status, in)
			}
			checkLLMError(t, "ClassifyError", in, err)
		})
		var req llm.Request
		if req.UnmarshalJSON(in) == nil {
			guard(t, "EncodeChat", in, func() {
				target := c.Target
				_, err := c.Adapter.EncodeChat(nil, &req, &target)
				checkLLMError(t, "EncodeChat", in, err)
			})
		}
		guard(t, "stream replay", in, func() {
			res := ReplayStream(c.Adapter.NewStreamDecoder(&llm.Request{Model: "m", Stream: true}), bytes.NewReader(in), c.MaxEventBytes)
			if res.Error != nil && res.Error.Kind == "NOT llm.Error" {
				t.Errorf("Decode returned a non-*llm.Error for %q: %s", in, res.Error.Msg)
			}
		})

		dec := c.Adapter.NewStreamDecoder(&llm.Request{Model: "m", Stream: true})
		var buf []llm.Delta
		for k := 0; k < 16; k++ {
			ev := sse.Event{Name: names[rng.IntN(len(names))]}
			if rng.IntN(8) == 0 {
				ev.Name = garbageInput(rng, nil)
			}
			ev.Data = garbageInput(rng, datas)
			guard(t, "StreamDecoder.Decode", append(append(slices.Clone(ev.Name), '|'), ev.Data...), func() {
				var err error
				buf, err = dec.Decode(&ev, buf[:0])
				checkLLMError(t, "Decode", ev.Data, err)
				dec.Usage()
				dec.Done()
			})
		}
	}
}

func checkLLMError(t *testing.T, what string, in []byte, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var e *llm.Error
	if !errors.As(err, &e) {
		t.Errorf("%s(%.200q) returned %T, want *llm.Error: %v", what, in, err, err)
	}
}

// guard runs f and turns a panic into a test failure naming the input.
func guard(t *testing.T, what string, in []byte, f func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("%s panicked on %.500q: %v", what, in, r)
		}
	}()
	f()
}

// garbageInput returns random bytes or a mutation of one of the seeds.
func garbageInput(rng *rand.Rand, seeds [][]byte) []byte {
	if len(seeds) == 0 || rng.IntN(5) == 0 {
		return randomBytes(rng, rng.IntN(256))
	}
	b := slices.Clone(seeds[rng.IntN(len(seeds))])
	for range 1 + rng.IntN(3) {
		b = mutate(rng, b)
	}
	return b
}

var interesting = []string{
	"null", "true", "-1", "0", "1e400", "99999999999999999999", "\"\"", "{}", "[]",
	"\"\\ud800\"", "\xff\xfe", "{\"type\":\"error\"}", "\n\n", "data: ", "event: ",
}

func mutate(rng *rand.Rand, b []byte) []byte {
	if len(b) == 0 {
		return randomBytes(rng, 1+rng.IntN(16))
	}
	i := rng.IntN(len(b))
	switch rng.IntN(6) {
	case 0: // truncate
		return b[:i]
	case 1: // flip bytes
		for range 1 + rng.IntN(8) {
			b[rng.IntN(len(b))] = byte(rng.IntN(256))
		}
		return b
	case 2: // insert something interesting
		s := interesting[rng.IntN(len(interesting))]
		return slices.Insert(b, i, []byte(s)...)
	case 3: // delete a run
		j := min(len(b), i+1+rng.IntN(32))
		return slices.Delete(b, i, j)
	case 4: // duplicate a run
		j := min(len(b), i+1+rng.IntN(64))
		return slices.Insert(b, j, b[i:j]...)
	default: // replace a number with a huge or negative one
		for k := i; k < len(b); k++ {
			if b[k] >= '0' && b[k] <= '9' {
				n := strconv.FormatInt(rng.Int64()-rng.Int64(), 10)
				return slices.Insert(slices.Delete(b, k, k+1), k, []byte(n)...)
			}
		}
		return b
	}
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.IntN(256))
	}
	return b
}
