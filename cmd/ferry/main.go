// Command ferry pins, promotes and rolls back container images in a GitOps
// environment repository. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/ferrycd/ferry/pkg/cli"
)

func main() {
	// CI systems set every unset input to "" (GitHub Actions does); kong
	// would take an empty FERRY_* variable as a value, so drop them.
	for _, kv := range os.Environ() {
		if k, v, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "FERRY_") && v == "" {
			os.Unsetenv(k)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
