package notify

import (
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ferrycd/ferry/pkg/ref"
)

// Block Kit limits (docs.slack.dev/reference/block-kit/blocks).
const (
	slackHeaderMax  = 150  // header text
	slackSectionMax = 3000 // section text
	slackFieldMax   = 2000 // each section field
	slackFieldsMax  = 10   // fields in a section
)

// slackText is a Block Kit text object.
type slackText struct {
	Type  string `json:"type"` // "plain_text" or "mrkdwn"
	Text  string `json:"text"`
	Emoji bool   `json:"emoji,omitempty"` // plain_text only: render :shortcodes:
}

// slackBlock is a header, section or context block.
type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`     // header, section
	Fields   []slackText `json:"fields,omitempty"`   // section
	Elements []slackText `json:"elements,omitempty"` // context
}

// slackPayload is what an incoming webhook takes: with blocks, text is the
// fallback shown in notifications.
type slackPayload struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

func slackMessage(ev Event) slackPayload {
	icon := map[string]string{
		OnSuccess: ":white_check_mark:",
		OnNoop:    ":heavy_minus_sign:",
		OnFailure: ":x:",
	}[ev.Result]
	if icon == "" {
		icon = ":grey_question:"
	}
	header := strings.TrimSpace(fmt.Sprintf("%s %s %s → %s", icon, ev.Action, scope(ev), ev.Env))
	header = strings.Join(strings.Fields(header), " ")
	switch ev.Result {
	case OnNoop:
		header += ": no change"
	case OnFailure:
		header += " failed"
	}

	var text, summary string
	switch ev.Result {
	case OnSuccess:
		text = "ferry " + join(pastTense(ev.Action), target(ev, false))
		summary = join("*"+capitalize(pastTense(ev.Action))+"*", target(ev, true))
		if ev.Commit != "" {
			text += ": commit " + ref.ShortSHA(ev.Commit)
			summary += ": commit " + code(ref.ShortSHA(ev.Commit))
		}
		if len(ev.Images) > 0 {
			var refs []string
			for _, im := range ev.Images {
				refs = append(refs, shortImage(im))
			}
			text += " (" + strings.Join(refs, ", ") + ")"
		}
	case OnNoop:
		text = "ferry " + runOf(ev, false) + ": nothing to change"
		summary = "*Nothing to change*: " + runOf(ev, true) + " pushed no commit"
	default:
		word := "Failed"
		if ev.Result != OnFailure && ev.Result != "" {
			word = capitalize(ev.Result)
		}
		text = "ferry " + runOf(ev, false) + " " + strings.ToLower(word)
		summary = "*" + word + "*: " + runOf(ev, true)
		if ev.Error != "" {
			text += ": " + quote([]byte(ev.Error), maxQuoted)
			errText := strings.ReplaceAll(strings.TrimSpace(ev.Error), "```", "'''")
			summary += "\n```" + escape(truncate(errText, slackSectionMax-utf8.RuneCountInString(summary)-16)) + "```"
		}
	}

	var fields []slackText
	field := func(label, value string) {
		if value != "" {
			fields = append(fields, mrkdwn(truncate("*"+label+"*\n"+value, slackFieldMax)))
		}
	}
	field("Environment", code(ev.Env))
	field("App", code(ev.App))
	field("Path", code(ev.Path))
	if ev.Commit != "" {
		c := code(ref.ShortSHA(ev.Commit))
		if ev.Previous != "" {
			c += " (was " + code(ref.ShortSHA(ev.Previous)) + ")"
		}
		field("Commit", c)
	}
	var images []string
	for _, im := range ev.Images {
		line := code(imageName(im))
		if im.Digest != "" {
			line += " " + code(ref.ShortDigest(im.Digest))
		}
		images = append(images, line)
	}
	field("Images", strings.Join(images, "\n"))
	field("Promoted from", code(ref.ShortAt(ev.PromotedFrom)))
	field("Rolled back to", code(ref.ShortSHA(ev.RollbackTo)))
	source := link(ev.SourceRepo, strings.TrimPrefix(strings.TrimPrefix(ev.SourceRepo, "https://"), "http://"))
	if ev.SourceCommit != "" {
		source = strings.TrimSpace(source + " " + code(ref.ShortSHA(ev.SourceCommit)))
	}
	field("Source", source)
	build := ev.BuildID
	if build == "" && ev.BuildURL != "" {
		build = "build"
	}
	field("Build", link(ev.BuildURL, build))
	if len(fields) > slackFieldsMax {
		fields = fields[:slackFieldsMax]
	}

	section := slackBlock{Type: "section", Text: ptr(mrkdwn(truncate(summary, slackSectionMax))), Fields: fields}
	blocks := []slackBlock{
		{Type: "header", Text: &slackText{Type: "plain_text", Text: truncate(header, slackHeaderMax), Emoji: true}},
		section,
	}
	var context []string
	context = append(context, "ferry")
	if !ev.Time.IsZero() {
		context = append(context, slackDate(ev.Time))
	}
	if ev.Repo != "" {
		context = append(context, "env repo "+code(ev.Repo))
	}
	blocks = append(blocks, slackBlock{Type: "context", Elements: []slackText{mrkdwn(strings.Join(context, " · "))}})
	return slackPayload{Text: escape(text), Blocks: blocks}
}

func ptr[T any](v T) *T { return &v }

func mrkdwn(s string) slackText { return slackText{Type: "mrkdwn", Text: s} }

// slackDate shows t in each reader's time zone, with a UTC fallback.
func slackDate(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

// escape makes s literal text in Slack mrkdwn.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// code shows s as inline code, or returns "" for an empty s.
func code(s string) string {
	s = strings.Join(strings.Fields(strings.ReplaceAll(s, "`", "'")), " ")
	if s == "" {
		return ""
	}
	return "`" + escape(s) + "`"
}

// link shows text linking to target when target is an http(s) URL, and
// text alone otherwise.
func link(target, text string) string {
	if text == "" {
		text = target
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return escape(text)
	}
	target = strings.NewReplacer("|", "%7C", "<", "%3C", ">", "%3E", " ", "%20").Replace(target)
	return "<" + target + "|" + escape(text) + ">"
}

// truncate cuts s to at most n runes, marking a cut with "…".
func truncate(s string, n int) string {
	if n < 1 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// scope names what a run touched: the app, else the path.
func scope(ev Event) string {
	if ev.App != "" {
		return ev.App
	}
	if ev.Path != "." {
		return ev.Path
	}
	return ""
}

// pastTense is what a successful run of action did.
func pastTense(action string) string {
	if v, ok := map[string]string{"deploy": "deployed", "promote": "promoted", "rollback": "rolled back"}[action]; ok {
		return v
	}
	return action
}

// runOf names a run: "deploy of hello to candidate".
func runOf(ev Event, markup bool) string {
	if scope(ev) == "" {
		return join(ev.Action, target(ev, markup))
	}
	return join(ev.Action, "of", target(ev, markup))
}

// target says what a run changed: "hello to candidate", or "hello on
// production" for a rollback; in code spans with markup.
func target(ev Event, markup bool) string {
	what, env := scope(ev), ev.Env
	if markup {
		what, env = code(what), code(env)
	}
	if env == "" {
		return what
	}
	prep := "to"
	if ev.Action == "rollback" {
		prep = "on"
	}
	return join(what, prep, env)
}

func join(parts ...string) string {
	var kept []string
	for _, p := range parts {
		if p != "" {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, " ")
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// imageName is repo:tag, or the ref when the tag is unknown.
func imageName(im Image) string {
	switch {
	case im.Tag != "":
		return im.Name + ":" + im.Tag
	case im.Name != "":
		return im.Name
	}
	return im.Ref
}

// shortImage is the last path element of the repository with its tag and
// a short digest: "hello:v1@sha256:17df661612ac".
func shortImage(im Image) string {
	if im.Name == "" {
		r := ref.Split(im.Ref)
		return ref.Ref{Repo: r.Repo, Tag: r.Tag, Digest: im.Digest}.Short()
	}
	return ref.Ref{Repo: im.Name, Tag: im.Tag, Digest: im.Digest}.Short()
}
