package cli

import (
	"context"
	"fmt"

	"github.com/ferrycd/ferry/pkg/ferry"
	"github.com/ferrycd/ferry/pkg/notify"
)

// fanOut writes to several env repos at once.
func (g *Globals) fanOut(ctx context.Context, h *HookFlags, ev notify.Event, dryRun bool, e ferry.Env, repos []string, run func(context.Context, ferry.Env) (*ferry.Report, error)) error {
	return fmt.Errorf("%w: %s lives in %d repos; fan-out is not wired yet", errUsage, ev.Env, len(repos))
}
