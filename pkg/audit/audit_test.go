package audit

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/internal/fuzzcorpus"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycd/ferry/internal/testenv"
)

const digest = "sha256:4f1c2a9e0000000000000000000000000000000000000000000000000000beef"

func TestFormatParseRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		rec  Record
		want string // subject
	}{
		{
			name: "deploy",
			rec: Record{Action: ActionDeploy, Env: "candidate", App: "hello",
				Images:  []string{"us-docker.pkg.dev/acme/apps/hello:abc1234@" + digest},
				Sources: []Source{{SourceRepo: "https://github.com/acme/hello", SourceCommit: "abc1234def", BuildID: "8d1f", BuildURL: "https://console.cloud.google.com/cloud-build/builds/8d1f"}}},
			want: "deploy hello to candidate: sha256:4f1c2a9e (hello:abc1234)",
		},
		{
			name: "port in registry, no tag",
			rec:  Record{Action: ActionDeploy, Env: "candidate", App: "hello", Images: []string{"127.0.0.1:5000/team/hello@" + digest}},
			want: "deploy hello to candidate: sha256:4f1c2a9e (hello)",
		},
		{
			name: "promote",
			rec: Record{Action: ActionPromote, Env: "production", App: "hello", PromotedFrom: "candidate@0123456789abcdef0123456789abcdef01234567", Images: []string{"r/hello:v1@" + digest},
				Sources: []Source{{SourceRepo: "https://github.com/acme/hello", SourceCommit: "c1", BuildID: "b1"}, {SourceCommit: "c2", BuildURL: "u2"}}},
			want: "promote hello to production from candidate@0123456789ab: sha256:4f1c2a9e (hello:v1)",
		},
		{
			name: "rollback",
			rec:  Record{Action: ActionRollback, Env: "production", App: "hello", RollbackTo: "0123456789abcdef0123456789abcdef01234567"},
			want: "roll back hello on production to 0123456789ab",
		},
		{
			name: "deploy over two rollbacks",
			rec: Record{Action: ActionDeploy, Env: "production", App: "hello", Path: "apps", Images: []string{"r/hello:v3@" + digest},
				OverrideRollback: []string{"0123456789abcdef0123456789abcdef01234567", "fedcba9876543210fedc"}},
			want: "deploy hello to production: sha256:4f1c2a9e (hello:v3)",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := tc.rec.Format("")
			if got := strings.SplitN(msg, "\n", 2)[0]; got != tc.want {
				t.Errorf("subject = %q, want %q", got, tc.want)
			}
			if diff := cmp.Diff(tc.rec, Parse(msg)); diff != "" {
				t.Errorf("Parse(Format()) mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseManual(t *testing.T) {
	for _, msg := range []string{"fix typo", "fix typo\n\nSigned-off-by: a <b@c>\n", "", "Ferry-Action: deploy"} {
		if got := Parse(msg).Action; got != ActionManual {
			t.Errorf("Parse(%q).Action = %q, want manual", msg, got)
		}
	}
}

// A newline smuggled into a field must not become a trailer of its own.
func TestFormatCannotForgeTrailers(t *testing.T) {
	rec := Record{Action: ActionDeploy, Env: "candidate", App: "hello", Sources: []Source{{BuildID: "x\nFerry-Action: rollback"}}}
	got := Parse(rec.Format(""))
	if got.Action != ActionDeploy || got.Source().BuildID != "x Ferry-Action: rollback" {
		t.Errorf("forged trailer: %+v", got)
	}
}

// git's own parser must read the trailers the same way.
func TestGitInterpretTrailers(t *testing.T) {
	testenv.LookPath(t, "git", "git interpret-trailers checks the trailers; Debian: apt-get install git")
	rec := Record{Action: ActionDeploy, Env: "candidate", App: "hello",
		Images:  []string{"r/hello:v1@" + digest, "r/sidecar:v2@" + digest},
		Sources: []Source{{SourceCommit: "abc", BuildID: "b1"}}}
	cmd := exec.Command("git", "interpret-trailers", "--parse")
	cmd.Stdin = strings.NewReader(rec.Format("Built from somewhere.\n\nA second paragraph."))
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for _, kv := range Trailers(rec.Format("")) {
		want.WriteString(kv[0] + ": " + kv[1] + "\n")
	}
	if diff := cmp.Diff(want.String(), string(out)); diff != "" {
		t.Errorf("git interpret-trailers mismatch (-ours +git):\n%s", diff)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(Record{Action: "deploy", Env: "candidate", App: "a", Images: []string{"r:t@" + digest}}.Format(""))
	f.Add("subject\n\nKey: v\n continued\n")
	f.Add("a\n\n\n\nb: c")
	fuzzcorpus.AddStrings(f, trailerCorpusDir)
	f.Fuzz(func(t *testing.T, msg string) {
		r := Parse(msg)
		if r.Action == "" {
			t.Fatal("empty action")
		}
		// What Parse read, Format must write back readably.
		again := Parse(r.Format(""))
		if r.Action != ActionManual && again.Action != strings.Join(strings.Fields(r.Action), " ") {
			t.Fatalf("action %q -> %q", r.Action, again.Action)
		}
	})
}

// trailerCorpusDir holds hand-written seeds in Go's corpus format
// ("go test fuzz v1", then one string value). It sits in the repository's
// testdata with the other corpora rather than in this package's testdata,
// so the seeds are loaded here, as pkg/manifest's FuzzRewrite loads its own;
// crashers the fuzzer finds still land in ./testdata/fuzz/FuzzParse and
// should be moved there.
const trailerCorpusDir = "../../testdata/fuzz/FuzzParseTrailers"
