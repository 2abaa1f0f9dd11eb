package notify_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycd/ferry/pkg/notify"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/notify")

const goldenDir = "../../testdata/notify"

// The shapes below mirror Slack's Block Kit reference
// (docs.slack.dev/reference/block-kit): a message posted to an incoming
// webhook is {"text", "blocks"}; a header block has a plain_text text object
// of at most 150 characters; a section block has a text object of at most
// 3000 characters and at most 10 field text objects of at most 2000; a
// context block has at most 10 elements. Decoding disallows unknown fields,
// so anything else in the payload fails the test.
type slackMessage struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

type slackBlock struct {
	Type     string       `json:"type"`
	Text     *slackText   `json:"text"`
	Fields   []slackText  `json:"fields"`
	Elements []slackText  `json:"elements"`
	BlockID  *json.Number `json:"block_id"` // never set
}

type slackText struct {
	Type  string `json:"type"`
	Text  string `json:"text"`
	Emoji bool   `json:"emoji"`
}

func checkSlackShapes(t *testing.T, raw []byte) slackMessage {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var msg slackMessage
	if err := dec.Decode(&msg); err != nil {
		t.Fatalf("payload does not decode as a Slack message: %v\n%s", err, raw)
	}
	if msg.Text == "" {
		t.Error(`"text" (the notification fallback) is empty`)
	}
	if len(msg.Blocks) == 0 {
		t.Fatal(`"blocks" is empty`)
	}
	textObject := func(where string, o slackText, max int) {
		if o.Type != "plain_text" && o.Type != "mrkdwn" {
			t.Errorf("%s: text object of type %q", where, o.Type)
		}
		if o.Emoji && o.Type != "plain_text" {
			t.Errorf("%s: emoji set on %s", where, o.Type)
		}
		if n := utf8.RuneCountInString(o.Text); n == 0 || n > max {
			t.Errorf("%s: text of %d characters, want 1..%d", where, n, max)
		}
	}
	var types []string
	for i, b := range msg.Blocks {
		types = append(types, b.Type)
		where := b.Type
		switch b.Type {
		case "header":
			if b.Text == nil || b.Text.Type != "plain_text" {
				t.Fatalf("block %d: a header needs a plain_text text object: %+v", i, b)
			}
			textObject(where, *b.Text, 150)
			if b.Fields != nil || b.Elements != nil {
				t.Errorf("block %d: header with fields or elements", i)
			}
		case "section":
			if b.Text == nil && len(b.Fields) == 0 {
				t.Errorf("block %d: a section needs text or fields", i)
			}
			if b.Text != nil {
				textObject(where, *b.Text, 3000)
			}
			if len(b.Fields) > 10 {
				t.Errorf("block %d: %d fields, at most 10", i, len(b.Fields))
			}
			for _, f := range b.Fields {
				textObject(where+" field", f, 2000)
			}
			if b.Elements != nil {
				t.Errorf("block %d: section with elements", i)
			}
		case "context":
			if n := len(b.Elements); n == 0 || n > 10 {
				t.Errorf("block %d: context with %d elements, want 1..10", i, n)
			}
			for _, e := range b.Elements {
				textObject(where+" element", e, 3000)
			}
			if b.Text != nil || b.Fields != nil {
				t.Errorf("block %d: context with text or fields", i)
			}
		default:
			t.Errorf("block %d: unexpected type %q", i, b.Type)
		}
	}
	if diff := cmp.Diff([]string{"header", "section", "context"}, types); diff != "" {
		t.Errorf("block types (-want +got):\n%s", diff)
	}
	if s := msg.Blocks[1].Text; s == nil || s.Type != "mrkdwn" {
		t.Errorf("the section's text is not mrkdwn: %+v", s)
	}
	return msg
}

func slackCases() []struct {
	name string
	ev   notify.Event
} {
	promote := deployEvent()
	promote.Action, promote.Env = "promote", "production"
	promote.PromotedFrom = "candidate@5c03fa223922b6a1d7e4c0f9a8b7c6d5e4f3a2b1"
	promote.Commit = "fdf14ca6d645aa1122334455667788990011aabb"
	promote.Images = promote.Images[:1]

	rollback := deployEvent()
	rollback.Action, rollback.Env = "rollback", "production"
	rollback.RollbackTo = "fdf14ca6d645aa1122334455667788990011aabb"
	rollback.Commit = "6d0ffa1103d7ffeeddccbbaa9988776655443322"
	rollback.SourceRepo, rollback.SourceCommit, rollback.BuildID, rollback.BuildURL = "", "", "", ""

	noop := deployEvent()
	noop.Result, noop.Commit, noop.Previous, noop.Files = notify.OnNoop, "", "", nil

	failure := deployEvent()
	failure.Result, failure.Commit, failure.Previous, failure.Files = notify.OnFailure, "", "", nil
	failure.Error = "validating apps/hello: kustomize build apps/hello: <resources> missing & \"base\" not found\nsecond line"

	minimal := notify.Event{Action: "deploy", Result: notify.OnSuccess, Env: "candidate", Path: ".", Commit: "0123456789abcdef0123456789abcdef01234567", Time: fixedTime}

	return []struct {
		name string
		ev   notify.Event
	}{
		{"deploy-success", deployEvent()},
		{"promote-success", promote},
		{"rollback-success", rollback},
		{"deploy-noop", noop},
		{"deploy-failure", failure},
		{"minimal", minimal},
	}
}

func TestSlackPayload(t *testing.T) {
	t.Parallel()
	for _, tc := range slackCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{answer: func(_ int, w http.ResponseWriter, _ *http.Request) {
				w.Write([]byte("ok"))
			}}
			srv := serve(t, rec)
			if err := notify.Slack(srv.URL+"/services/T000/B000/XXXXSECRET").Fire(t.Context(), tc.ev); err != nil {
				t.Fatalf("Fire: %v", err)
			}
			got := rec.got()
			if len(got) != 1 || got[0].contentType != "application/json" {
				t.Fatalf("got %d requests (Content-Type %q), want 1 application/json", len(got), got[0].contentType)
			}
			msg := checkSlackShapes(t, got[0].body)
			if tc.ev.Result == notify.OnSuccess && tc.ev.Commit != "" {
				mustContain(t, "fallback text", msg.Text, tc.ev.Commit[:12])
			}

			var pretty bytes.Buffer
			if err := json.Indent(&pretty, got[0].body, "", "  "); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			golden := filepath.Join(goldenDir, "slack-"+tc.name+".json")
			if *update {
				if err := os.MkdirAll(goldenDir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./pkg/notify -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), pretty.String()); diff != "" {
				t.Errorf("payload differs from %s (-want +got; -update rewrites it):\n%s", golden, diff)
			}
		})
	}
}

func TestSlackEscapes(t *testing.T) {
	t.Parallel()
	ev := deployEvent()
	ev.App = "<!channel> & `x`"
	rec := &recorder{answer: statuses(200)}
	srv := serve(t, rec)
	if err := notify.Slack(srv.URL).Fire(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	msg := checkSlackShapes(t, rec.got()[0].body)
	// Slack parses the fallback and mrkdwn objects (not plain_text) for
	// mentions and links: an app name must reach them as entities, never
	// as a live <!channel>.
	mrkdwn := []string{msg.Text}
	for _, b := range msg.Blocks {
		for _, o := range append(append([]slackText{}, b.Fields...), b.Elements...) {
			mrkdwn = append(mrkdwn, o.Text)
		}
		if b.Text != nil && b.Text.Type == "mrkdwn" {
			mrkdwn = append(mrkdwn, b.Text.Text)
		}
	}
	all := strings.Join(mrkdwn, "\n")
	mustNotContain(t, "mrkdwn", all, "<!channel>")
	mustContain(t, "mrkdwn", all, "`&lt;!channel&gt; &amp; 'x'`", "ferry deployed &lt;!channel&gt; &amp; `x` to candidate")
}

// TestSlackSecretNeverShown: a Slack webhook URL is a bearer token. It must
// not appear in the hook's name, its errors or its logs, whatever fails.
func TestSlackSecretNeverShown(t *testing.T) {
	t.Parallel()
	const secret = "XXXXSECRETXXXXSECRETXXXX"
	const hookPath = "/services/T000/B000/" + secret
	echo := func(code int) func(int, http.ResponseWriter, *http.Request) {
		return func(_ int, w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(code)
			// A server that quotes the URL back.
			w.Write([]byte("no_service for " + r.URL.String() + " " + r.URL.Path + " " + path.Base(r.URL.Path)))
		}
	}
	for _, tc := range []struct {
		name   string
		url    func(t *testing.T) string
		errSub string
	}{
		{"404 quoting the path", func(t *testing.T) string { return serve(t, &recorder{answer: echo(404)}).URL + hookPath }, "HTTP 404"},
		{"500s", func(t *testing.T) string {
			return serve(t, &recorder{answer: echo(500)}).URL + hookPath + "?x=" + secret
		}, "gave up after 2 attempts"},
		{"timeout", func(t *testing.T) string { return serve(t, &recorder{answer: hang(t)}).URL + hookPath }, "timed out"},
		{"refused", func(t *testing.T) string { return refusedURL(t, hookPath) }, "connection refused"},
		{"basic auth", func(t *testing.T) string {
			return strings.Replace(serve(t, &recorder{answer: echo(403)}).URL, "://", "://u:"+secret+"@", 1) + "/x"
		}, "HTTP 403"},
		{"no scheme", func(*testing.T) string { return "hooks.slack.com" + hookPath }, "URL must start with"},
		{"unparsable", func(*testing.T) string { return "https://hooks.slack.com" + hookPath + "%zz" }, "not a valid URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var logs logBuffer
			h := notify.Slack(tc.url(t), notify.WithAttempts(2), fast,
				notify.WithTimeout(100*time.Millisecond), notify.WithLogger(logs.logger()))
			err := h.Fire(t.Context(), deployEvent())
			if err == nil {
				t.Fatal("Fire succeeded")
			}
			mustContain(t, "error", err.Error(), h.Name(), tc.errSub)
			for what, s := range map[string]string{"Name()": h.Name(), "error": err.Error(), "log": logs.String()} {
				mustNotContain(t, what, s, "XXXXSECRET", "/services/")
			}
		})
	}
}
