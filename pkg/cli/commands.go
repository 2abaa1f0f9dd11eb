package cli

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/ferrycd/ferry/pkg/demo"
	"github.com/ferrycd/ferry/pkg/ferry"
	"github.com/ferrycd/ferry/pkg/ref"
)

// DeployCmd is `ferry deploy`.
type DeployCmd struct {
	Env          string   `help:"Environment branch to write, e.g. candidate; with a ferry.yaml, an environment it names (default: its first)." env:"FERRY_ENV" placeholder:"E"`
	Image        []string `help:"Image to pin, repo:tag or repo@sha256:...; repeat for several." env:"FERRY_IMAGE" placeholder:"REF" sep:","`
	ImageField   []string `help:"Helm values field to pin, instead of finding image maps by their repository (Argo CD Image Updater's syntax: frontend.image, sidecars[0].image; repeatable)." env:"FERRY_IMAGE_FIELD" placeholder:"PATH" sep:","`
	Policy       []string `help:"Flux ImagePolicy (NAMESPACE:NAME) whose setter markers the image pins; the first --policy goes with the first --image, and so on." env:"FERRY_POLICY" placeholder:"NS:NAME" sep:","`
	Path         pathArg  `help:"Directory in the env repo to edit ('.', the default, for all of it); nothing outside it changes. With a ferry.yaml and --app, the environment's directory for the app." env:"FERRY_PATH" placeholder:"DIR"`
	App          string   `help:"App name for the audit trail (default: the last element of --path, else the image name)." env:"FERRY_APP" placeholder:"NAME"`
	SourceRepo   string   `help:"Source repository URL for the audit trail (default from GITHUB_REPOSITORY, GitLab's CI_PROJECT_URL or Cloud Build's REPO_FULL_NAME)." env:"FERRY_SOURCE_REPO" placeholder:"URL"`
	SourceCommit string   `help:"Source commit (default from GITHUB_SHA, CI_COMMIT_SHA or COMMIT_SHA)." env:"FERRY_SOURCE_COMMIT" placeholder:"SHA"`
	BuildID      string   `help:"Build ID (default from GITHUB_RUN_ID, CI_PIPELINE_ID or BUILD_ID)." env:"FERRY_BUILD_ID" placeholder:"ID"`
	BuildURL     string   `help:"Build URL (default derived from the CI's variables)." env:"FERRY_BUILD_URL" placeholder:"URL"`
	DryRun       bool     `help:"Print the diff that would be committed; push nothing." env:"FERRY_DRY_RUN"`

	OverrideRollback bool `help:"Deploy even though a rollback on --env holds --path (rolled back there, inside it, or in a scope containing it). It lifts the holds on the scopes --path contains, recorded as Ferry-Override-Rollback." env:"FERRY_OVERRIDE_ROLLBACK"`
	AllowDowngrade   bool `help:"Deploy even if the image was built before the one it replaces (by default an older build that finishes last is skipped)." env:"FERRY_ALLOW_DOWNGRADE"`

	RemoteFlags `embed:""`
	HookFlags   `embed:""`
	FanOutFlags `embed:""`

	PullRequestFlags `embed:""`
}

// Run deploys.
func (c *DeployCmd) Run(ctx context.Context, g *Globals) error {
	e, err := g.writeEnv()
	if err != nil {
		return err
	}
	if err := c.RemoteFlags.apply(&e); err != nil {
		return err
	}
	prov := ferry.ProvenanceFromEnv(ferry.Provenance{
		SourceRepo: c.SourceRepo, SourceCommit: c.SourceCommit, BuildID: c.BuildID, BuildURL: c.BuildURL,
	}, g.getenv)
	req := ferry.DeployRequest{
		Env: c.Env, Images: c.Image, Policies: c.Policy, ImageFields: c.ImageField, Path: c.Path.value(), App: c.App, Provenance: prov, DryRun: c.DryRun, OverrideRollback: c.OverrideRollback, AllowDowngrade: c.AllowDowngrade,
	}
	var repos []string
	policy := false
	if g.wantsConfig(c.App, c.Path.set) {
		p, ok, err := g.placeOf(ctx, e, c.Env, c.App, c.Path)
		if err != nil {
			return err
		}
		if ok {
			req.Env, req.EnvName, req.Path, req.App, repos, policy = p.branch, p.name, p.path, p.app, p.repos, p.pullRequest
		}
	}
	ev := baseEvent(g, "deploy", or(req.EnvName, req.Env), req.App, cleanPath(req.Path))
	ev.SourceRepo, ev.SourceCommit, ev.BuildID, ev.BuildURL = prov.SourceRepo, prov.SourceCommit, prov.BuildID, prov.BuildURL
	return g.writeTo(ctx, &c.HookFlags, &c.FanOutFlags, &c.PullRequestFlags, policy, ev, c.DryRun, e, repos, func(ctx context.Context, e ferry.Env) (*ferry.Report, error) {
		return ferry.Deploy(ctx, e, req)
	})
}

// or returns a, or b when a is empty.
func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// done says what a report did, e.g. "rolled back hello on production".
func done(rep *ferry.Report) string {
	app := rep.App
	if app == "" {
		app = rep.Path
	}
	switch rep.Action {
	case "promote":
		return fmt.Sprintf("promoted %s to %s", app, rep.Branch)
	case "rollback":
		return fmt.Sprintf("rolled back %s on %s", app, rep.Branch)
	default:
		return fmt.Sprintf("deployed %s to %s", app, rep.Branch)
	}
}

func (g *Globals) printReport(rep *ferry.Report) error {
	if rep.Skipped {
		rep.Reason += "; pass --allow-downgrade to deploy it anyway"
	}
	if g.Output == "json" {
		return g.printJSON(rep)
	}
	w := g.stdout
	switch {
	case rep.DryRun && rep.Changed:
		fmt.Fprintf(w, "dry run, nothing pushed: would have %s\n", done(rep))
		fmt.Fprint(w, rep.Diff)
	case rep.DryRun:
		fmt.Fprintf(w, "dry run: nothing to change on %s\n", rep.Branch)
	case rep.Changed && rep.PullRequest != nil:
		fmt.Fprintf(w, "%s by pull request: commit %s on %s (attempts: %d)\n", done(rep), rep.Commit, rep.PullRequest.Head, rep.Attempts)
	case rep.Changed:
		fmt.Fprintf(w, "%s: commit %s (attempts: %d)\n", done(rep), rep.Commit, rep.Attempts)
	case rep.Skipped:
		fmt.Fprintf(w, "skipped on %s: %s\n", rep.Branch, rep.Reason)
	default:
		fmt.Fprintf(w, "nothing to do on %s: %s\n", rep.Branch, rep.Reason)
	}
	if rep.From != "" {
		fmt.Fprintf(w, "  from  %s\n", rep.From)
	}
	if rep.RollbackTo != "" {
		fmt.Fprintf(w, "  to    %s\n", rep.RollbackTo)
	}
	for _, pr := range rep.ClosedPullRequests {
		fmt.Fprintf(w, "  closed #%d %s (head %s): merged after the rollback, it would undo it\n", pr.Number, pr.URL, pr.Head)
	}
	if pr := rep.PullRequest; pr != nil {
		verb := "updated"
		if pr.Opened {
			verb = "opened"
		}
		fmt.Fprintf(w, "  pull request #%d %s (%s, %s; head %s)\n", pr.Number, pr.URL, pr.State, verb, pr.Head)
		if pr.MergeCommit != "" {
			fmt.Fprintf(w, "  merged as %s\n", pr.MergeCommit)
		}
	}
	for _, img := range rep.Images {
		fmt.Fprintf(w, "  image %s\n", img.Ref)
	}
	for _, f := range rep.Files {
		fmt.Fprintf(w, "  file  %s\n", f)
	}
	return nil
}

// ResolveCmd is `ferry resolve`.
type ResolveCmd struct {
	Ref string `arg:"" help:"Image reference: repo:tag, repo@sha256:..., or both." placeholder:"REF"`
}

// Run resolves.
func (c *ResolveCmd) Run(ctx context.Context, g *Globals) error {
	if _, err := ref.Parse(c.Ref); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	res, err := g.resolver().Resolve(ctx, c.Ref)
	if err != nil {
		return err
	}
	if g.Output == "json" {
		return g.printJSON(map[string]string{"name": res.Repo, "tag": res.Tag, "digest": res.Digest, "ref": res.Repo + "@" + res.Digest, "mediaType": res.MediaType})
	}
	fmt.Fprintf(g.stdout, "%s@%s\n", res.Repo, res.Digest)
	return nil
}

// DemoCmd is `ferry demo`.
type DemoCmd struct {
	Dir string `help:"Keep the demo's env repo in this directory (default: a temporary one, removed afterwards)." placeholder:"DIR" type:"path"`
}

// Run runs the demo.
func (c *DemoCmd) Run(ctx context.Context, g *Globals) error {
	return demo.Run(ctx, g.stdout, demo.Options{Dir: c.Dir, Logger: g.logger()})
}

// Set at build time: -ldflags "-X github.com/ferrycd/ferry/pkg/cli.version=v1.2.3 -X ...commit=..."
var (
	version = ""
	commit  = ""
)

// VersionCmd is `ferry version`.
type VersionCmd struct{}

// Run prints the version.
func (c *VersionCmd) Run(g *Globals) error {
	v, rev := Version()
	if g.Output == "json" {
		return g.printJSON(map[string]string{"version": v, "commit": rev, "go": runtime.Version(), "platform": runtime.GOOS + "/" + runtime.GOARCH})
	}
	fmt.Fprintf(g.stdout, "ferry %s (commit %s, %s, %s/%s)\n", v, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

// Version returns the version and commit injected by -ldflags, falling back
// to what the Go toolchain recorded in the binary.
func Version() (v, rev string) {
	v, rev = version, commit
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && rev == "" {
				rev = s.Value
			}
		}
	}
	if v == "" {
		v = "devel"
	}
	if rev == "" {
		rev = "unknown"
	}
	return v, strings.TrimSpace(rev)
}
