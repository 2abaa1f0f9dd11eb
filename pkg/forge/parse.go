package forge

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// ErrRepoURL: a repository URL from which no host, owner and name can be
// read.
var ErrRepoURL = errors.New("not a hosted repository URL")

// Parse reads the host, the owner (GitHub) or namespace (GitLab, with its
// subgroups: "group/sub") and the name of a repository from the URL ferry
// clones it by: https://github.com/acme/env.git, git@github.com:acme/env.git,
// ssh://git@gitlab.example.com:2222/group/sub/env.git. The host keeps the
// port of an http(s) URL (the API is served there too) and drops an SSH
// one; credentials in the URL are never returned, nor quoted in the error.
// A GitLab under a relative URL root (https://host/gitlab/group/env.git)
// cannot be told apart from a subgroup: its caller must name the project.
func Parse(repoURL string) (host, owner, name string, err error) {
	var path string
	switch {
	case strings.Contains(repoURL, "://"):
		u, perr := url.Parse(repoURL)
		if perr != nil {
			return "", "", "", fmt.Errorf("%w: %s", ErrRepoURL, redactURL(repoURL))
		}
		switch u.Scheme {
		case "https", "http":
			host = u.Host
		case "ssh", "git", "git+ssh", "ssh+git":
			host = u.Hostname()
		default:
			return "", "", "", fmt.Errorf("%w: %s (a %s URL)", ErrRepoURL, redactURL(repoURL), u.Scheme)
		}
		path = u.Path
	default:
		// scp-like: [user@]host:path, where host has no slash before the
		// colon (else it is a local path).
		h, p, ok := strings.Cut(repoURL, ":")
		if at := strings.LastIndexByte(h, '@'); at >= 0 {
			h = h[at+1:]
		}
		if !ok || h == "" || strings.Contains(h, "/") {
			return "", "", "", fmt.Errorf("%w: %q (a local path?)", ErrRepoURL, scpRedact(repoURL))
		}
		host, path = h, p
	}
	if strings.HasPrefix(host, "[") { // an IPv6 literal without a port
		host = strings.Trim(host, "[]")
	}
	if h, port, err := net.SplitHostPort(host); err == nil && port == "" {
		host = h
	}
	path = strings.TrimSuffix(strings.Trim(path, "/"), ".git")
	i := strings.LastIndexByte(path, '/')
	if host == "" || i <= 0 || i == len(path)-1 {
		return "", "", "", fmt.Errorf("%w: %s (want HOST/OWNER/NAME)", ErrRepoURL, scpRedact(redactURL(repoURL)))
	}
	return host, path[:i], path[i+1:], nil
}

// scpRedact drops a user from an scp-like address, should it be a token.
func scpRedact(s string) string {
	if strings.Contains(s, "://") {
		return s
	}
	if h, _, _ := strings.Cut(s, ":"); strings.Contains(h, "@") {
		return "***" + s[strings.LastIndexByte(h, '@'):]
	}
	return s
}

// GitHubAPI is the REST base URL for a GitHub host Parse returned:
// https://api.github.com for github.com, https://HOST/api/v3 for GitHub
// Enterprise Server. In GitHub Actions, GITHUB_API_URL says it outright.
func GitHubAPI(host string) string {
	if host == "github.com" || host == "www.github.com" {
		return "https://api.github.com"
	}
	return "https://" + host + "/api/v3"
}

// GitLabAPI is the API v4 base URL for a GitLab host Parse returned. In
// GitLab CI, CI_API_V4_URL says it outright.
func GitLabAPI(host string) string {
	return "https://" + host + "/api/v4"
}
