package configs_test

import (
	"errors"
	"fmt"
	"os"

	"github.com/aigw/aigw/configs"
)

func ExampleLoad() {
	p, _, err := configs.Load("examples/quickstart.yaml", os.LookupEnv)
	if err != nil {
		var rep *configs.Report
		if errors.As(err, &rep) {
			fmt.Println(rep) // every problem, one "file:line: message" per line
		}
		return
	}
	for _, m := range p.Models {
		fmt.Println(m.ID, m.Type, m.Targets[0].Provider)
	}
	fmt.Println(p.Providers[0].Mock.Chunks, p.Providers[0].Timeouts.Total)
	// Output:
	// gpt-4o chat mock
	// gpt-4o-mini chat mock
	// text-embedding-3-small embedding mock
	// 8 10m0s
}

func ExampleLoad_problems() {
	_, _, err := configs.Load("testdata/bad/mixed.yaml", configs.MapEnv(nil))
	fmt.Println(err)
	// Output:
	// testdata/bad/mixed.yaml:5: providers[0].base_url is empty (MIXED_BASE_URL is not set)
	// testdata/bad/mixed.yaml:7: unknown field "max_conn" in provider (did you mean "max_conns"?)
	// testdata/bad/mixed.yaml:9: providers[1].type "vllm" is not supported (use one of openai, azure, anthropic, gemini, mock)
	// testdata/bad/mixed.yaml:15: models[0].targets[1].provider: provider "azure" is not declared
	// testdata/bad/mixed.yaml:16: models[1].id: model "gpt-4o" is already declared at testdata/bad/mixed.yaml:12
	// testdata/bad/mixed.yaml:17: models[1].targets is empty: a model needs at least one target
	// testdata/bad/mixed.yaml:20: orgs[0].models[1]: model "o1" is not declared
	// testdata/bad/mixed.yaml:24: keys[0].sha256 must be 64 lowercase hex characters (the sha256 of the key), got 8 characters
	// testdata/bad/mixed.yaml:26: keys[1].org: org "acme" is not declared
	// testdata/bad/mixed.yaml:28: keys[1].disabled: expected true or false, got "nope"
}
