package cli

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ferrycd/ferry/pkg/envrepo"
	"github.com/ferrycd/ferry/pkg/ferry"
	"github.com/ferrycd/ferry/pkg/forge"
)

// ExitPRClosed is the status when --wait saw the pull request closed
// without a merge: the change did not land, and a person said so.
const ExitPRClosed = 4

// PullRequestFlags make deploy, promote and rollback write through a pull
// request instead of a push to the environment's branch.
type PullRequestFlags struct {
	PullRequest     bool          `help:"Write through a pull request: the commit goes to ferry's head branch (--pr-branch), and a pull request into the environment's branch is opened, or the open one updated; a closed one is replaced. The hold and the build-order guard read the environment's branch." env:"FERRY_PULL_REQUEST"`
	PRBranch        string        `help:"Head branch of the pull request; {env}, {app} and {action} are filled in (default ferry/{env}/{app}, and ferry/{env}/{app}-rollback for a rollback). ferry force-updates it only over its own commits of the same action." env:"FERRY_PR_BRANCH" placeholder:"TEMPLATE"`
	PRLabel         []string      `help:"Label for the pull request (repeatable)." env:"FERRY_PR_LABEL" placeholder:"LABEL"`
	PRReviewer      []string      `help:"Reviewer to request (repeatable; a user name)." env:"FERRY_PR_REVIEWER" placeholder:"USER"`
	PRDraft         bool          `help:"Open the pull request as a draft." env:"FERRY_PR_DRAFT"`
	AutoMerge       string        `help:"Have the host merge the pull request by itself once its checks and reviews allow (its merge queue, if any, decides): squash, merge or rebase. The merge commit carries ferry's message and trailers." enum:"squash,merge,rebase," default:"" env:"FERRY_AUTO_MERGE" placeholder:"METHOD"`
	Wait            time.Duration `help:"With --pull-request: wait this long for the merge. Exit 0 with the merge commit when merged, 4 when the pull request was closed, 1 when it is still open at the end." env:"FERRY_WAIT" placeholder:"DURATION"`
	Forge           string        `help:"The host's API: github or gitlab (default: from --repo's host)." enum:"github,gitlab," default:"" env:"FERRY_FORGE" placeholder:"HOST"`
	ForgeURL        string        `help:"The host's API base URL (default https://api.github.com, or https://HOST/api/v4 for GitLab; GitHub Enterprise: https://HOST/api/v3)." env:"FERRY_FORGE_URL" placeholder:"URL"`
	VerifiedCommits bool          `help:"GitHub: make the commits through GitHub's API, without author or committer, so that GitHub signs them (with a GitHub App: verified as the App). The branch moves by a fast-forward-only update: no update is lost, but a branch rewound behind the tip ferry read would not be refused (a push would). Not with --pull-request." env:"FERRY_VERIFIED_COMMITS"`
	ForgeToken      string        `help:"Token for the host's API (default: --git-token, or the GitHub App's token); never printed." env:"FERRY_FORGE_TOKEN,GITLAB_TOKEN" placeholder:"TOKEN"`
}

// check refuses pull-request flags without pull-request mode (--pull-request
// or the environment's policy).
func (f *PullRequestFlags) check(on bool) error {
	if !on && (f.AutoMerge != "" || f.Wait != 0 || f.PRDraft || len(f.PRLabel) > 0 || len(f.PRReviewer) > 0) {
		return fmt.Errorf("%w: --auto-merge, --wait, --pr-draft, --pr-label and --pr-reviewer go with --pull-request", errUsage)
	}
	return nil
}

// options are the pull-request mode of a write to the repo at repoURL.
func (f *PullRequestFlags) options(g *Globals, repoURL string) (*ferry.PullRequestOptions, error) {
	if f.Wait < 0 {
		return nil, fmt.Errorf("%w: --wait %s: must not be negative", errUsage, f.Wait)
	}
	if f.PRBranch != "" && !strings.Contains(f.PRBranch, "{app}") && !strings.Contains(f.PRBranch, "{env}") {
		g.logger().Warn("--pr-branch names neither {env} nor {app}: every write shares one pull request", "branch", f.PRBranch)
	}
	fg, _, err := f.forge(g, repoURL, "--pull-request")
	if err != nil {
		return nil, err
	}
	return &ferry.PullRequestOptions{
		Forge: fg, Head: f.PRBranch, Labels: f.PRLabel, Reviewers: f.PRReviewer, Draft: f.PRDraft,
		AutoMerge: forge.MergeMethod(f.AutoMerge), Wait: f.Wait, PollEvery: pollEvery(f.Wait),
	}, nil
}

// commits are --verified-commits' API for the repo at repoURL.
func (f *PullRequestFlags) commits(g *Globals, repoURL string) (forge.GitHubCommits, error) {
	fg, kind, err := f.forge(g, repoURL, "--verified-commits")
	if err != nil {
		return nil, err
	}
	gc, ok := fg.(forge.GitHubCommits)
	if kind != "github" || !ok {
		return nil, fmt.Errorf("%w: --verified-commits is GitHub's: %s is %s", errUsage, envrepo.Redact(repoURL), kind)
	}
	return gc, nil
}

// forge is the host's API for the repo at repoURL, for the flag what.
func (f *PullRequestFlags) forge(g *Globals, repoURL, what string) (forge.Forge, string, error) {
	host, owner, name, err := forge.Parse(repoURL)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s: cannot tell the host's repository from %s: %v", errUsage, what, envrepo.Redact(repoURL), err)
	}
	kind := f.Forge
	if kind == "" {
		switch {
		case g.GitHubAppFlags.configured(): // a GitHub App's repository is on GitHub
			kind = "github"
		case strings.Contains(host, "gitlab"):
			kind = "gitlab"
		case strings.Contains(host, "github"):
			kind = "github"
		default:
			return nil, "", fmt.Errorf("%w: %s: is %s GitHub or GitLab? pass --forge", errUsage, what, host)
		}
	}
	token := or(f.ForgeToken, g.GitToken)
	if token == "" {
		return nil, "", fmt.Errorf("%w: %s needs a token for the host's API: --forge-token, --git-token or a GitHub App", errUsage, what)
	}
	g.red.add(token)
	// The API's base: the flag, else what the CI says (GitHub Actions'
	// GITHUB_API_URL, GitLab CI's CI_API_V4_URL), else the host's usual.
	var fg forge.Forge
	opts := []forge.Option{forge.WithLogger(g.logger())}
	switch kind {
	case "github":
		api := or(f.ForgeURL, or(g.getenv("GITHUB_API_URL"), forge.GitHubAPI(host)))
		if g.GitHubAppFlags.configured() {
			api = or(f.ForgeURL, g.GitHubAPIURL) // where the App's token was minted
		}
		fg = forge.GitHub(api, owner, name, token, opts...)
	case "gitlab":
		api := or(f.ForgeURL, or(g.getenv("CI_API_V4_URL"), forge.GitLabAPI(host)))
		fg = forge.GitLab(api, owner+"/"+name, token, opts...)
	}
	return fg, kind, nil
}

// pollEvery is how often --wait looks: often for a short wait, every 10s
// for a long one.
func pollEvery(wait time.Duration) time.Duration {
	return min(max(wait/20, 200*time.Millisecond), 10*time.Second)
}

// prExit maps --wait's verdicts to exit statuses, the report printed.
func prExit(err error) (int, bool) {
	switch {
	case errors.Is(err, ferry.ErrPullRequestClosed):
		return ExitPRClosed, true
	case errors.Is(err, ferry.ErrPullRequestOpen):
		return ExitError, true
	}
	return 0, false
}
