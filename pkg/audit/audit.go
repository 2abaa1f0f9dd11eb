// Package audit writes and parses the commit messages ferry leaves on an
// environment branch. The subject line is for people; the git trailers
// (Ferry-Action, Ferry-Env, ...) are for machines, and `git interpret-trailers
// --parse` reads them. Writing and parsing live here together so the format
// can only change in one place.
package audit

import (
	"fmt"
	"strings"

	"github.com/ferrycd/ferry/pkg/ref"
)

// Actions ferry records in Ferry-Action.
const (
	ActionDeploy   = "deploy"
	ActionPromote  = "promote"
	ActionRollback = "rollback"
	// ActionManual is what Parse reports for a commit ferry did not make.
	ActionManual = "manual"
)

// Trailer keys, in the order Format writes them.
const (
	KeyAction       = "Ferry-Action"
	KeyEnv          = "Ferry-Env"
	KeyApp          = "Ferry-App"
	KeyPath         = "Ferry-Path"
	KeyImage        = "Ferry-Image"
	KeyPromotedFrom = "Ferry-Promoted-From"
	// KeyPromotedFromRepo and KeyPromotedFromPath say where a promote read
	// its source when that was another env repo or another directory than
	// the one it wrote (environments as repos or directories); KeyCarry
	// what it carried when that was the image pins alone.
	KeyPromotedFromRepo = "Ferry-Promoted-From-Repo"
	KeyPromotedFromPath = "Ferry-Promoted-From-Path"
	KeyCarry            = "Ferry-Carry"
	KeyRollbackTo       = "Ferry-Rollback-To"
	// KeyOverrideRollback names a rollback whose hold a write replaced with
	// --override-rollback, one trailer per rollback.
	KeyOverrideRollback = "Ferry-Override-Rollback"
	KeySourceRepo       = "Ferry-Source-Repo"
	KeySourceCommit     = "Ferry-Source-Commit"
	KeyBuildID          = "Ferry-Build-ID"
	KeyBuildURL         = "Ferry-Build-URL"
)

// Record is what one ferry commit says it did.
type Record struct {
	Action string
	Env    string
	App    string
	// Path is the scope the commit wrote ("." for the whole branch); it
	// lets later runs tell from messages alone what a commit touched.
	Path string
	// Images are pinned references, repo:tag@sha256:..., one trailer each.
	Images       []string
	PromotedFrom string // E1@sha, promote only
	// PromotedFromRepo (redacted URL) and PromotedFromPath are set when
	// the source was another repo or directory; Carry is "images" when a
	// promote carried only the image pins ("" is the whole tree).
	PromotedFromRepo string
	PromotedFromPath string
	Carry            string
	RollbackTo       string // sha, rollback only
	// OverrideRollback lists the rollbacks (shas) whose hold this write
	// replaced with --override-rollback; empty when it replaced none.
	OverrideRollback []string
	// Sources are the builds the commit carries: one for a deploy, one per
	// distinct deploy carried by a promote.
	Sources []Source
}

// Source is where an image came from: the provenance trailers of a deploy.
type Source struct {
	SourceRepo   string `json:"sourceRepo,omitempty"`
	SourceCommit string `json:"sourceCommit,omitempty"`
	BuildID      string `json:"buildID,omitempty"`
	BuildURL     string `json:"buildURL,omitempty"`
}

// IsZero reports whether s says nothing.
func (s Source) IsZero() bool { return s == Source{} }

// Subject is the one-line summary people read in `git log --oneline`, e.g.
// "deploy hello to candidate: sha256:4f1c2a9e (hello:abc1234)".
func (r Record) Subject() string {
	app := r.App
	if app == "" {
		app = "all apps"
	}
	var what []string
	var short []string
	for _, img := range r.Images {
		r := ref.Split(img)
		what = append(what, ref.ShortDigestN(r.Digest, 8))
		short = append(short, ref.Ref{Repo: r.Base(), Tag: r.Tag}.String())
	}
	var s string
	switch r.Action {
	case ActionPromote:
		s = fmt.Sprintf("promote %s to %s", app, r.Env)
		if r.PromotedFrom != "" {
			s += " from " + ref.ShortAt(r.PromotedFrom)
		}
	case ActionRollback:
		s = fmt.Sprintf("roll back %s on %s", app, r.Env)
		if r.RollbackTo != "" {
			s += " to " + ref.ShortSHA(r.RollbackTo)
		}
		return oneLine(s)
	default:
		s = fmt.Sprintf("%s %s to %s", r.Action, app, r.Env)
	}
	if len(what) > 0 {
		s += ": " + strings.Join(what, ", ") + " (" + strings.Join(short, ", ") + ")"
	}
	return oneLine(s)
}

// oneLine folds every run of white space, newlines included, into one
// space: a field with a newline in it must not spill out of its line, where
// the rest would start the body, or a trailer block of its own.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// Format renders the full commit message: subject, an optional body, and the
// trailer block. Empty fields are left out.
func (r Record) Format(body string) string {
	var b strings.Builder
	b.WriteString(r.Subject())
	b.WriteString("\n\n")
	if body == "" {
		var lines []string
		for _, src := range r.Sources {
			if src.SourceRepo != "" && src.SourceCommit != "" {
				lines = append(lines, oneLine(fmt.Sprintf("Built from %s@%s", trimScheme(src.SourceRepo), src.SourceCommit)))
			}
		}
		body = strings.Join(lines, "\n")
	}
	if body = strings.TrimSpace(body); body != "" {
		b.WriteString(body)
		b.WriteString("\n\n")
	}
	add := func(k, v string) {
		// A newline would end the trailer block early and let input forge trailers.
		v = oneLine(v)
		if v != "" {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	add(KeyAction, r.Action)
	add(KeyEnv, r.Env)
	add(KeyApp, r.App)
	add(KeyPath, r.Path)
	for _, img := range r.Images {
		add(KeyImage, img)
	}
	add(KeyPromotedFrom, r.PromotedFrom)
	add(KeyPromotedFromRepo, r.PromotedFromRepo)
	add(KeyPromotedFromPath, r.PromotedFromPath)
	add(KeyCarry, r.Carry)
	add(KeyRollbackTo, r.RollbackTo)
	for _, sha := range r.OverrideRollback {
		add(KeyOverrideRollback, sha)
	}
	for _, src := range r.Sources {
		repo := src.SourceRepo
		if len(r.Sources) > 1 {
			// Each group starts with the same key, so Parse can split them.
			repo = or(repo, "-")
		}
		add(KeySourceRepo, repo)
		add(KeySourceCommit, src.SourceCommit)
		add(KeyBuildID, src.BuildID)
		add(KeyBuildURL, src.BuildURL)
	}
	return b.String()
}

// Parse reads the trailers of a commit message. A message without a
// Ferry-Action trailer is reported as ActionManual; Parse never fails, since
// any commit on a branch, by ferry or by hand, is part of its history.
func Parse(message string) Record {
	var r Record
	for _, kv := range Trailers(message) {
		switch kv[0] {
		case KeyAction:
			r.Action = kv[1]
		case KeyEnv:
			r.Env = kv[1]
		case KeyApp:
			r.App = kv[1]
		case KeyPath:
			r.Path = kv[1]
		case KeyImage:
			r.Images = append(r.Images, kv[1])
		case KeyPromotedFrom:
			r.PromotedFrom = kv[1]
		case KeyPromotedFromRepo:
			r.PromotedFromRepo = kv[1]
		case KeyPromotedFromPath:
			r.PromotedFromPath = kv[1]
		case KeyCarry:
			r.Carry = kv[1]
		case KeyRollbackTo:
			r.RollbackTo = kv[1]
		case KeyOverrideRollback:
			r.OverrideRollback = append(r.OverrideRollback, kv[1])
		case KeySourceRepo, KeySourceCommit, KeyBuildID, KeyBuildURL:
			if kv[0] == KeySourceRepo || len(r.Sources) == 0 {
				r.Sources = append(r.Sources, Source{})
			}
			src := &r.Sources[len(r.Sources)-1]
			switch kv[0] {
			case KeySourceRepo:
				if kv[1] != "-" {
					src.SourceRepo = kv[1]
				}
			case KeySourceCommit:
				src.SourceCommit = kv[1]
			case KeyBuildID:
				src.BuildID = kv[1]
			case KeyBuildURL:
				src.BuildURL = kv[1]
			}
		}
	}
	if r.Action == "" {
		r.Action = ActionManual
	}
	return r
}

// Trailers returns the key/value pairs of the message's last paragraph when
// that paragraph is a trailer block (every line "Key: value", as git
// interpret-trailers sees it for ferry's own messages). Continuation lines
// starting with whitespace are folded into the previous value.
func Trailers(message string) [][2]string {
	message = strings.ReplaceAll(message, "\r\n", "\n")
	paras := strings.Split(strings.TrimRight(message, "\n \t"), "\n\n")
	if len(paras) < 2 {
		return nil // the subject alone is never a trailer block
	}
	last := strings.Split(paras[len(paras)-1], "\n")
	var out [][2]string
	for _, line := range last {
		if line == "" {
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && len(out) > 0 {
			// Trimmed again: a blank continuation of an empty value must
			// leave it empty, not " ".
			out[len(out)-1][1] = strings.TrimSpace(out[len(out)-1][1] + " " + strings.TrimSpace(line))
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || !isToken(k) {
			return nil
		}
		out = append(out, [2]string{k, strings.TrimSpace(v)})
	}
	return out
}

func isToken(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range k {
		if !(c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Source returns the first source, or the zero Source.
func (r Record) Source() Source {
	if len(r.Sources) == 0 {
		return Source{}
	}
	return r.Sources[0]
}

func trimScheme(u string) string {
	for _, p := range []string{"https://", "http://"} {
		u = strings.TrimPrefix(u, p)
	}
	u = strings.TrimPrefix(u, "github.com/")
	return strings.TrimSuffix(u, ".git")
}
