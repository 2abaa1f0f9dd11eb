package notify

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ferrycd/ferry/pkg/ref"
)

// GitHub records ev for GitHub Actions, reading the runner's variables
// through getenv (os.Getenv outside tests). Each file is appended to,
// never truncated; a variable that is unset is skipped without error.
//
// $GITHUB_OUTPUT gets the step outputs
//
//	changed  true when a commit was pushed, else false
//	result   success, noop or failure
//	commit   the commit pushed, or empty
//	digest   the first image's digest
//	digests  every image's digest, space-separated
//	images   the images as a compact JSON array of {name, tag, digest, ref}
//	pull-request-url, pull-request-number, pull-request-state,
//	merge-commit  the pull request the write went through (empty without)
//
// as name=value lines, or in the multiline form name<<ghadelimiter_RANDOM,
// value lines, ghadelimiter_RANDOM for a value with a line break (as
// actions/toolkit writes them).
//
// $GITHUB_STEP_SUMMARY gets a Markdown section: a heading
// "ferry ACTION → ENV", the result, the commit and provenance, and a table
// of the images with their tags and digests.
func GitHub(getenv func(string) string, ev Event) error {
	var errs []error
	if path := getenv("GITHUB_OUTPUT"); path != "" {
		out, err := githubOutputs(ev)
		if err == nil {
			err = appendFile(path, out)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("writing step outputs to $GITHUB_OUTPUT: %w", err))
		}
	}
	if path := getenv("GITHUB_STEP_SUMMARY"); path != "" {
		if err := appendFile(path, []byte(githubSummary(ev))); err != nil {
			errs = append(errs, fmt.Errorf("writing the job summary to $GITHUB_STEP_SUMMARY: %w", err))
		}
	}
	return errors.Join(errs...)
}

func githubOutputs(ev Event) ([]byte, error) {
	ev = ev.normalized()
	images, err := json.Marshal(ev.Images)
	if err != nil {
		return nil, err
	}
	var digests []string
	for _, im := range ev.Images {
		if im.Digest != "" {
			digests = append(digests, im.Digest)
		}
	}
	digest := ""
	if len(ev.Images) > 0 {
		digest = ev.Images[0].Digest
	}
	changed := "false"
	if ev.Result == OnSuccess {
		changed = "true"
	}
	var b strings.Builder
	for _, kv := range [][2]string{
		{"changed", changed},
		{"result", ev.Result},
		{"commit", ev.Commit},
		{"digest", digest},
		{"digests", strings.Join(digests, " ")},
		{"images", string(images)},
		{"pull-request-url", prField(ev, func(p *PullRequest) string { return p.URL })},
		{"pull-request-number", prField(ev, func(p *PullRequest) string { return fmt.Sprint(p.Number) })},
		{"pull-request-state", prField(ev, func(p *PullRequest) string { return p.State })},
		{"merge-commit", prField(ev, func(p *PullRequest) string { return p.MergeCommit })},
	} {
		if err := writeOutput(&b, kv[0], kv[1]); err != nil {
			return nil, err
		}
	}
	return []byte(b.String()), nil
}

func prField(ev Event, f func(*PullRequest) string) string {
	if ev.PullRequest == nil {
		return ""
	}
	return f(ev.PullRequest)
}

// writeOutput writes one output in GitHub's format: name=value, or the
// delimited form for a value with a line break.
func writeOutput(b *strings.Builder, name, value string) error {
	if !strings.ContainsAny(value, "\r\n") {
		fmt.Fprintf(b, "%s=%s\n", name, value)
		return nil
	}
	delim := "ghadelimiter_" + rand.Text()
	if strings.Contains(value, delim) {
		return fmt.Errorf("output %s contains its delimiter", name)
	}
	fmt.Fprintf(b, "%s<<%s\n%s\n%s\n", name, delim, value, delim)
	return nil
}

func githubSummary(ev Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### ferry %s → %s\n\n", mdText(ev.Action), mdText(ev.Env))
	switch ev.Result {
	case OnSuccess:
		b.WriteString(":white_check_mark: **success**")
		if ev.Commit != "" {
			b.WriteString(": commit " + mdCode(ev.Commit))
		}
		if ev.Previous != "" {
			b.WriteString(" (previous " + mdCode(ref.ShortSHA(ev.Previous)) + ")")
		}
		b.WriteString("\n")
	case OnNoop:
		b.WriteString(":heavy_minus_sign: **noop**: nothing to change, no commit pushed\n")
	default:
		fmt.Fprintf(&b, ":x: **%s**\n", mdText(ev.Result))
		if ev.Error != "" {
			fence := "```"
			for strings.Contains(ev.Error, fence) {
				fence += "`"
			}
			fmt.Fprintf(&b, "\n%s\n%s\n%s\n", fence, strings.TrimSpace(ev.Error), fence)
		}
	}

	var facts []string
	fact := func(label, value string) {
		if value != "" {
			facts = append(facts, "- "+label+": "+value)
		}
	}
	if pr := ev.PullRequest; pr != nil {
		fact("Pull request", mdLink(pr.URL, fmt.Sprintf("#%d", pr.Number))+" ("+mdText(pr.State)+")")
		fact("Merge commit", mdCode(pr.MergeCommit))
	}
	fact("App", mdCode(ev.App))
	fact("Path", mdCode(ev.Path))
	fact("Promoted from", mdCode(ev.PromotedFrom))
	fact("Rolled back to", mdCode(ev.RollbackTo))
	source := mdLink(ev.SourceRepo, strings.TrimPrefix(strings.TrimPrefix(ev.SourceRepo, "https://"), "http://"))
	if ev.SourceCommit != "" {
		source = strings.TrimSpace(source + " " + mdCode(ev.SourceCommit))
	}
	fact("Source", source)
	build := ev.BuildID
	if build == "" && ev.BuildURL != "" {
		build = "build"
	}
	fact("Build", mdLink(ev.BuildURL, build))
	fact("Env repo", mdCode(ev.Repo))
	if len(facts) > 0 {
		b.WriteString("\n" + strings.Join(facts, "\n") + "\n")
	}

	if len(ev.Images) > 0 {
		b.WriteString("\n| Image | Tag | Digest |\n| --- | --- | --- |\n")
		for _, im := range ev.Images {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", mdCell(im.Name), mdCell(im.Tag), mdCell(im.Digest))
		}
	}
	b.WriteString("\n")
	return b.String()
}

// mdCode shows s as inline code on one line, or "" for an empty s.
func mdCode(s string) string {
	s = strings.Join(strings.Fields(strings.ReplaceAll(s, "`", "'")), " ")
	if s == "" {
		return ""
	}
	return "`" + s + "`"
}

// mdCell is mdCode fit for a table cell.
func mdCell(s string) string {
	return strings.ReplaceAll(mdCode(s), "|", `\|`)
}

// mdText is s as literal Markdown text on one line.
func mdText(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune("\\`*_[]<>#|!~", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// mdLink links text to target when target is an http(s) URL.
func mdLink(target, text string) string {
	if text == "" {
		return ""
	}
	if !strings.HasPrefix(target, "https://") && !strings.HasPrefix(target, "http://") {
		return mdText(text)
	}
	target = strings.NewReplacer(" ", "%20", "(", "%28", ")", "%29", "<", "%3C", ">", "%3E").Replace(target)
	return "[" + mdText(text) + "](" + target + ")"
}

// appendFile appends data to the file at path, starting on a new line if
// the file does not end with one.
func appendFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
	}
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			data = append([]byte("\n"), data...)
		}
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
