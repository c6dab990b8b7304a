// Command aigw is the AI gateway: `aigw serve` runs it, `aigw validate`
// checks a policy directory, `aigw keys new` mints a gateway key, `aigw
// version` prints the build.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // org time zones work in a container without zoneinfo
)

// version is set at link time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
