package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aigw/aigw/configs"
	"github.com/aigw/aigw/policy/auth"
	"github.com/aigw/aigw/proxy"
)

// exitError carries a process exit code through cobra.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// run executes the command line and returns the exit code. ctx is cancelled
// on SIGINT/SIGTERM. lookupEnv is the environment (injected for tests).
func run(ctx context.Context, args []string, lookupEnv configs.Env, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:           "aigw",
		Short:         "aigw is an OpenAI-compatible AI gateway",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(args)
	root.AddCommand(serveCmd(ctx, lookupEnv), validateCmd(lookupEnv), keysCmd(), versionCmd())
	err := root.ExecuteContext(ctx)
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintln(stderr, "aigw:", err)
		return 2
	}
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "aigw %s (%s %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}

func validateCmd(lookupEnv configs.Env) *cobra.Command {
	return &cobra.Command{
		Use:   "validate PATH",
		Short: "Check a policy file or directory; every problem is reported as file:line",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pol, rep, err := configs.Load(args[0], lookupEnv)
			out, errw := cmd.OutOrStdout(), cmd.ErrOrStderr()
			if err == nil {
				// The loader knows no prices: check every routable model
				// has one, as the gateway will when it loads the policy.
				base, perr := shippedPrices()
				if perr != nil {
					return perr
				}
				if _, probs := proxy.PriceTable(pol, base); len(probs) > 0 {
					rep.Problems = append(rep.Problems, probs...)
					err = rep
				}
			}
			if rep != nil {
				for _, w := range rep.Warnings {
					fmt.Fprintf(errw, "%s: warning: %s\n", w.Pos, w.Msg)
				}
			}
			if err != nil {
				if rep != nil && len(rep.Problems) > 0 {
					for _, p := range rep.Problems {
						fmt.Fprintf(errw, "%s: %s\n", p.Pos, p.Msg)
					}
					fmt.Fprintf(errw, "%d problem(s) found\n", len(rep.Problems))
				} else {
					fmt.Fprintln(errw, err)
				}
				return exitError{1}
			}
			fmt.Fprintf(out, "%s: ok\n", args[0])
			return nil
		},
	}
}

func keysCmd() *cobra.Command {
	keys := &cobra.Command{Use: "keys", Short: "Manage gateway keys"}
	var id, org string
	newCmd := &cobra.Command{
		Use:   "new",
		Short: "Print a fresh gateway key and the policy entry holding its sha256",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key := "sk-aigw-" + strings.ToLower(rand.Text())
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "key:    %s\nsha256: %s\n\n", key, auth.Digest(key))
			fmt.Fprintf(out, "# add to a policy file (the key itself is shown only once, store it safely):\nkeys:\n  - id: %s\n    org: %s\n    sha256: %s\n", id, org, auth.Digest(key))
			return nil
		},
	}
	newCmd.Flags().StringVar(&id, "id", "new-key", "key id for the policy entry")
	newCmd.Flags().StringVar(&org, "org", "demo", "organisation for the policy entry")
	keys.AddCommand(newCmd)
	return keys
}
