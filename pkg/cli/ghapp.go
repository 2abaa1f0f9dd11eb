package cli

import (
	"context"
	"errors"
	"fmt"
	"github.com/ferrycd/ferry/pkg/config"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/alecthomas/kong"
	"github.com/ferrycd/ferry/pkg/envrepo"
	"github.com/ferrycd/ferry/pkg/ghapp"
)

// GitHubAppFlags make ferry authenticate as a GitHub App: before the
// command runs, it mints an installation token scoped to the --repo
// repositories and uses it as the git password (user x-access-token), in
// place of a long-lived --git-token.
type GitHubAppFlags struct {
	GitHubAppID             string `name:"github-app-id" help:"GitHub App ID (or client ID): git authenticates with an installation token the App mints for --repo's repositories, instead of --git-token." env:"FERRY_GITHUB_APP_ID" placeholder:"ID"`
	GitHubAppPrivateKey     string `name:"github-app-private-key" help:"The App's private key: the .pem file GitHub generates, or, in the environment variable, the PEM itself; never printed." env:"FERRY_GITHUB_APP_PRIVATE_KEY" placeholder:"FILE"`
	GitHubAppInstallationID int64  `name:"github-app-installation-id" help:"The App's installation on --repo's owner (default: looked up from --repo)." env:"FERRY_GITHUB_APP_INSTALLATION_ID" placeholder:"ID"`
	GitHubAPIURL            string `name:"github-api-url" help:"GitHub's REST API, where the App's token is minted and its pull requests opened (https://HOST/api/v3 for GitHub Enterprise Server); in GitHub Actions, the one the runner names." default:"https://api.github.com" env:"FERRY_GITHUB_API_URL,GITHUB_API_URL"`

	// app, appOwner and appRepos are the App and what its token covers,
	// to mint it again for the repos a ferry.yaml names.
	app      *ghapp.App
	appOwner string
	appRepos []string
	// appFresh retries the minted token's first uses, which GitHub may
	// refuse for a moment; nil without an App.
	appFresh *ghapp.Fresh
}

// configured reports whether any App flag was given.
func (f *GitHubAppFlags) configured() bool {
	return f.GitHubAppID != "" || f.GitHubAppPrivateKey != "" || f.GitHubAppInstallationID != 0
}

// run runs the command, first minting a GitHub App's token when one is
// configured, and words a refused token in the App's terms.
func (c *CLI) run(ctx context.Context, kctx *kong.Context) error {
	g := &c.Globals
	repos := g.Repo
	for _, from := range []string{c.Promote.FromRepo, c.Diff.FromRepo} {
		if from != "" && !slices.Contains(repos, from) {
			repos = append(slices.Clip(repos), from)
		}
	}
	if g.Config != "" && g.GitHubAppFlags.configured() {
		// A local --config is read now, so the token covers the repos it
		// names too (one owner's; others it cannot cover).
		if cfg, err := config.Load(g.Config); err == nil {
			repos = g.GitHubAppFlags.withSameOwner(repos, cfg)
		}
	}
	if err := g.useGitHubApp(ctx, kctx.Command(), repos); err != nil {
		return err
	}
	err := kctx.Run(g)
	if err != nil && g.appFresh != nil && (errors.Is(err, envrepo.ErrAuthRequired) || errors.Is(err, envrepo.ErrAuthRejected)) {
		err = saidWhatToDo{err, "; git refused the GitHub App's installation token: check that the App may read and write the repository's contents (Contents: Read and write) and that --repo is on the GitHub of --github-api-url"}
	}
	return err
}

// saidWhatToDo is an error that already says what the user can do, so
// hint adds nothing.
type saidWhatToDo struct {
	err error
	say string
}

func (e saidWhatToDo) Error() string { return e.err.Error() + e.say }
func (e saidWhatToDo) Unwrap() error { return e.err }

// useGitHubApp mints the App's installation token for repos (--repo and
// --from-repo) and makes it the git credential of every remote, when an
// App is configured and the command reaches an env repo.
func (g *Globals) useGitHubApp(ctx context.Context, command string, repos []string) error {
	f := &g.GitHubAppFlags
	if isPEM(f.GitHubAppPrivateKey) { // a secret from the start
		g.red.addPEM(f.GitHubAppPrivateKey)
	}
	if !f.configured() {
		return nil
	}
	switch {
	case f.GitHubAppID == "":
		return fmt.Errorf("%w: --github-app-private-key and --github-app-installation-id go with --github-app-id (or FERRY_GITHUB_APP_ID)", errUsage)
	case f.GitHubAppPrivateKey == "":
		return fmt.Errorf("%w: --github-app-id needs the App's private key: --github-app-private-key FILE (or FERRY_GITHUB_APP_PRIVATE_KEY)", errUsage)
	case f.GitHubAppInstallationID < 0:
		return fmt.Errorf("%w: --github-app-installation-id %d: must be positive", errUsage, f.GitHubAppInstallationID)
	}
	// GITHUB_TOKEN is often in a CI job's environment whatever the job
	// wants; only a token given to ferry itself conflicts.
	ambient := g.GitToken == g.getenv("GITHUB_TOKEN") && g.getenv("FERRY_GIT_TOKEN") == ""
	if g.GitToken != "" && !ambient {
		return fmt.Errorf("%w: --git-token (or FERRY_GIT_TOKEN) and --github-app-id: give one; the App's installation token is the git credential", errUsage)
	}
	switch cmd, _, _ := strings.Cut(command, " "); cmd {
	case "resolve", "demo", "version":
		return nil // no env repo
	}
	if len(g.Repo) == 0 {
		return nil // the command says --repo is required
	}
	owner, names, err := appRepos(repos, f.GitHubAPIURL)
	if err != nil {
		return err
	}
	pemBytes, where := []byte(f.GitHubAppPrivateKey), "(the PEM itself)"
	if !isPEM(f.GitHubAppPrivateKey) {
		where = f.GitHubAppPrivateKey
		if pemBytes, err = os.ReadFile(f.GitHubAppPrivateKey); err != nil {
			return fmt.Errorf("%w: --github-app-private-key: %v", errUsage, err)
		}
		g.red.addPEM(string(pemBytes))
	}
	key, err := ghapp.LoadKey(pemBytes)
	if err != nil {
		if ke := (*ghapp.KeyError)(nil); errors.As(err, &ke) {
			return fmt.Errorf("%w: --github-app-private-key %s: %s", errUsage, where, ke.Reason)
		}
		return err
	}
	v, _ := Version()
	app := &ghapp.App{ID: f.GitHubAppID, Key: key, BaseURL: f.GitHubAPIURL, InstallationID: f.GitHubAppInstallationID,
		UserAgent: "ferry/" + v, Secret: g.red.add}
	tok, err := app.Token(ctx, owner, names[0], names[1:]...)
	if err != nil {
		return appHint(err)
	}
	log := g.logger()
	if ambient && g.GitToken != "" {
		log.Info("GITHUB_TOKEN is set; git uses the GitHub App's installation token instead")
	}
	log.Info("GitHub App installation token minted", "owner", owner, "token", tok)
	if p := tok.Permissions["contents"]; p != "write" && writes(command) {
		log.Warn("the GitHub App's installation cannot push: give the App Contents: Read and write", "contents", or(p, "none"))
	}
	if left := time.Until(tok.Expires); left < g.Timeout {
		log.Warn("the GitHub App's token expires before --timeout: a run that long fails once it has", "expires_in", left.Round(time.Second), "timeout", g.Timeout)
	}
	g.GitToken, g.GitUser = tok.Value, "x-access-token"
	g.appFresh = &ghapp.Fresh{}
	g.app, g.appOwner, g.appRepos = app, owner, names
	return nil
}

// withSameOwner adds to repos the repos cfg names that are the same
// owner's as the first of repos (an App's token covers one installation).
func (f *GitHubAppFlags) withSameOwner(repos []string, cfg *config.Config) []string {
	owner, _, err := appRepos(repos[:min(len(repos), 1)], f.GitHubAPIURL)
	if err != nil {
		return repos
	}
	for _, env := range cfg.Environments {
		for _, u := range env.Repos {
			if o, _, err := appRepos([]string{u}, f.GitHubAPIURL); err == nil && strings.EqualFold(o, owner) && !slices.Contains(repos, u) {
				repos = append(slices.Clip(repos), u)
			}
		}
	}
	return repos
}

// coverConfig mints the App's token again when the ferry.yaml read from the
// env repo names repos of the owner the token does not cover yet: the
// file could not be read before a token was minted.
func (g *Globals) coverConfig(ctx context.Context, cfg *config.Config) error {
	if g.app == nil {
		return nil
	}
	var more []string
	for _, env := range cfg.Environments {
		for _, u := range env.Repos {
			o, names, err := appRepos([]string{u}, g.GitHubAPIURL)
			if err == nil && strings.EqualFold(o, g.appOwner) && !slices.Contains(g.appRepos, names[0]) && !slices.Contains(more, names[0]) {
				more = append(more, names[0])
			}
		}
	}
	if len(more) == 0 {
		return nil
	}
	names := append(slices.Clone(g.appRepos), more...)
	tok, err := g.app.Token(ctx, g.appOwner, names[0], names[1:]...)
	if err != nil {
		return appHint(err)
	}
	g.logger().Info("GitHub App installation token minted again, for the repos the ferry.yaml names", "owner", g.appOwner, "repos", names)
	g.GitToken, g.appRepos = tok.Value, names
	g.appFresh = &ghapp.Fresh{}
	return nil
}

// appOptions are the remote options a minted App token adds: its first
// uses retried while GitHub may not accept it yet, which is logged once.
func (g *Globals) appOptions() []envrepo.Option {
	if g.appFresh == nil {
		return nil
	}
	var once sync.Once
	return []envrepo.Option{envrepo.WithAuthRetry(func(ctx context.Context, op func() error, refused func(error) bool) error {
		return g.appFresh.Retry(ctx, op, func(err error) bool {
			if !refused(err) {
				return false
			}
			once.Do(func() {
				g.logger().Info("git refused the GitHub App's fresh token; retrying for a few seconds, as GitHub may take a moment to accept it")
			})
			return true
		})
	})}
}

// writes reports whether the command pushes.
func writes(command string) bool {
	cmd, _, _ := strings.Cut(command, " ")
	return cmd == "deploy" || cmd == "promote" || cmd == "rollback"
}

// appHint names the flags behind a failure to mint a token.
func appHint(err error) error {
	switch {
	case errors.Is(err, ghapp.ErrUnauthorized):
		return fmt.Errorf("%w; check --github-app-id and --github-app-private-key", err)
	case errors.Is(err, ghapp.ErrNotInstalled):
		return fmt.Errorf("%w; check --repo and --github-app-installation-id", err)
	}
	var apiErr *ghapp.APIError
	if !errors.As(err, &apiErr) {
		return fmt.Errorf("%w (check --github-api-url)", err)
	}
	return err
}

// isPEM tells the PEM itself from a file's path.
func isPEM(s string) bool { return strings.HasPrefix(strings.TrimSpace(s), "-----BEGIN") }

// appRepos reads the owner and the names of the repositories an App's
// token is minted for from the --repo URLs, https://HOST/OWNER/REPO(.git):
// one owner (an installation is one account's), on the host whose API is
// apiURL (github.com's is api.github.com; a GitHub Enterprise Server's is
// on its own host), so that the token goes to no other host.
func appRepos(repos []string, apiURL string) (owner string, names []string, err error) {
	api, err := url.Parse(apiURL)
	if err != nil || (api.Scheme != "https" && api.Scheme != "http") || api.Host == "" {
		return "", nil, fmt.Errorf("%w: --github-api-url %q: want https://api.github.com or https://HOST/api/v3", errUsage, apiURL)
	}
	for _, raw := range repos {
		clean, _, _ := envrepo.SplitCredentials(raw)
		u, err := url.Parse(clean)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return "", nil, fmt.Errorf("%w: --repo %s: a GitHub App's token is for git over HTTPS: give --repo as https://HOST/OWNER/REPO", errUsage, envrepo.Redact(raw))
		}
		parts := strings.Split(strings.TrimSuffix(strings.Trim(u.Path, "/"), ".git"), "/")
		if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
			return "", nil, fmt.Errorf("%w: --repo %s: a GitHub App's token is minted for https://HOST/OWNER/REPO; cannot tell the owner and repository", errUsage, clean)
		}
		host, apiHost := strings.ToLower(u.Hostname()), strings.ToLower(api.Hostname())
		if apiHost != host && apiHost != "api."+host {
			return "", nil, fmt.Errorf("%w: --repo %s is not on the GitHub whose API is --github-api-url %s, and the App's token goes to no other host (GitHub Enterprise Server: --github-api-url https://%s/api/v3)", errUsage, clean, apiURL, u.Host)
		}
		if owner != "" && !strings.EqualFold(owner, parts[0]) {
			return "", nil, fmt.Errorf("%w: --repo: %s and %s have different owners; a GitHub App's token covers one installation, one owner's repositories", errUsage, owner, parts[0])
		}
		owner = parts[0]
		if !slices.Contains(names, parts[1]) {
			names = append(names, parts[1])
		}
	}
	return owner, names, nil
}

// addPEM adds a private key's PEM to the secrets: whole, and each line of
// its body, so a part of it is not printed either.
func (r *redactor) addPEM(p string) {
	r.add(strings.TrimSpace(p))
	for _, line := range strings.Split(p, "\n") {
		if line = strings.TrimSpace(line); !strings.HasPrefix(line, "-----") && !strings.Contains(line, ":") {
			r.add(line)
		}
	}
}
