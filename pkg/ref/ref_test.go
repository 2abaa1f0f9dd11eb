package ref_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/internal/fuzzcorpus"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/ferrycd/ferry/pkg/ref"
)

const (
	dig  = "sha256:4f1c2a9e00000000000000000000000000000000000000000000000000000001"
	dig2 = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    ref.Ref
		wantErr string // substring of the error; "" means success
	}{
		{name: "tag", in: "127.0.0.1:5000/team/hello:v1",
			want: ref.Ref{Repo: "127.0.0.1:5000/team/hello", Tag: "v1"}},
		{name: "digest", in: "127.0.0.1:5000/team/hello@" + dig,
			want: ref.Ref{Repo: "127.0.0.1:5000/team/hello", Digest: dig}},
		{name: "tag and digest", in: "127.0.0.1:5000/team/hello:v1@" + dig,
			want: ref.Ref{Repo: "127.0.0.1:5000/team/hello", Tag: "v1", Digest: dig}},
		{name: "docker hub official", in: "nginx:1.27",
			want: ref.Ref{Repo: "index.docker.io/library/nginx", Tag: "1.27"}},
		{name: "docker hub alias", in: "docker.io/acme/app:v2",
			want: ref.Ref{Repo: "index.docker.io/acme/app", Tag: "v2"}},
		{name: "artifact registry", in: "us-docker.pkg.dev/acme/apps/hello:abc1234",
			want: ref.Ref{Repo: "us-docker.pkg.dev/acme/apps/hello", Tag: "abc1234"}},
		{name: "localhost", in: "localhost:5000/hello:latest",
			want: ref.Ref{Repo: "localhost:5000/hello", Tag: "latest"}},
		{name: "separators", in: "reg.example/a__b/c-d--e/f.g_h:V1.0_rc-1",
			want: ref.Ref{Repo: "reg.example/a__b/c-d--e/f.g_h", Tag: "V1.0_rc-1"}},
		{name: "ipv6", in: "[::1]:5000/team/hello:v1",
			want: ref.Ref{Repo: "[::1]:5000/team/hello", Tag: "v1"}},

		{name: "empty", in: "", wantErr: `invalid image reference "": empty`},
		{name: "no tag", in: "127.0.0.1:5000/team/hello",
			wantErr: `invalid image reference "127.0.0.1:5000/team/hello": no tag or digest; want 127.0.0.1:5000/team/hello:<tag> or 127.0.0.1:5000/team/hello@sha256:... (ferry never assumes "latest")`},
		{name: "no tag docker hub", in: "nginx", wantErr: "no tag or digest"},
		{name: "empty tag", in: "nginx:", wantErr: "nothing after ':'"},
		{name: "bad tag", in: "nginx:-x", wantErr: `tag "-x" must be`},
		{name: "long tag", in: "nginx:" + strings.Repeat("a", 129), wantErr: "must be 1 to 128"},
		{name: "uppercase repo", in: "127.0.0.1:5000/Team/hello:v1", wantErr: "repository can only contain the characters"},
		{name: "double slash", in: "127.0.0.1:5000/team//hello:v1", wantErr: `repository path "team//hello"`},
		{name: "trailing separator", in: "127.0.0.1:5000/team/hello-:v1", wantErr: `repository path "team/hello-"`},
		{name: "no repo", in: ":v1", wantErr: "no repository"},
		{name: "only registry", in: "127.0.0.1:5000/:v1", wantErr: "repository must be between 1 and 255"},
		{name: "bad port", in: "127.0.0.1:50x0/team/hello:v1", wantErr: "registries must be valid RFC 3986 URI authorities"},
		{name: "empty port", in: "reg.example:/team/hello:v1", wantErr: `registry "reg.example:": want host or host:port`},
		{name: "bad host", in: "-reg.example/team/hello:v1", wantErr: `registry "-reg.example": want host or host:port`},
		{name: "empty digest", in: "nginx@", wantErr: "nothing after '@'"},
		{name: "short digest", in: "nginx@sha256:abcd", wantErr: `digest "sha256:abcd" must be sha256: followed by 64 lowercase hex digits`},
		{name: "uppercase digest", in: "nginx@" + strings.ToUpper(dig), wantErr: `must start with "sha256:"`},
		{name: "uppercase hex", in: "nginx@sha256:" + strings.Repeat("A", 64), wantErr: "64 lowercase hex digits"},
		{name: "sha512", in: "nginx@sha512:" + strings.Repeat("a", 128), wantErr: `must start with "sha256:"`},
		{name: "two digests", in: "nginx@" + dig + "@" + dig, wantErr: "more than one '@'"},
		{name: "space", in: " nginx:1", wantErr: "white space"},
		{name: "scheme", in: "https://reg.example/app:v1", wantErr: "invalid image reference"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ref.Parse(tc.in)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("Parse(%q) = %+v, want error containing %q", tc.in, got, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("Parse(%q) error = %q, want it to contain %q", tc.in, err, tc.wantErr)
				}
				if !errors.Is(err, ref.ErrInvalid) {
					t.Errorf("Parse(%q) error %q does not match ErrInvalidReference", tc.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Parse(%q) (-want +got):\n%s", tc.in, diff)
			}
			again, err := ref.Parse(got.String())
			if err != nil {
				t.Fatalf("Parse(%q) of String(): %v", got.String(), err)
			}
			if diff := cmp.Diff(got, again); diff != "" {
				t.Errorf("Parse(String()) round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRepo(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "nginx", want: "index.docker.io/library/nginx"},
		{in: "index.docker.io/library/nginx", want: "index.docker.io/library/nginx"},
		{in: "127.0.0.1:5000/team/hello", want: "127.0.0.1:5000/team/hello"},
		{in: "", wantErr: true},
		{in: "Team/hello", wantErr: true},
		{in: "nginx:1.27", wantErr: true},
	}
	for _, tc := range tests {
		got, err := ref.ParseRepo(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseRepo(%q) error = %v, want error: %t", tc.in, err, tc.wantErr)
			continue
		}
		if err != nil && !errors.Is(err, ref.ErrInvalid) {
			t.Errorf("ParseRepo(%q) error %q does not match ErrInvalidReference", tc.in, err)
		}
		if got != tc.want {
			t.Errorf("ParseRepo(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"127.0.0.1:5000/team/hello:v1",
		"127.0.0.1:5000/team/hello@" + dig,
		"127.0.0.1:5000/team/hello:v1@" + dig2,
		"nginx:1.27",
		"docker.io/library/nginx:latest",
		"us-docker.pkg.dev/acme/apps/hello:abc1234",
		"[::1]:5000/a/b:c",
		"localhost/a:b",
		"a:b:c",
		"a/b:c/d",
		"",
		"nginx",
		"nginx@",
		"@sha256:",
		"Reg.Example:443/a__b/c:X",
	} {
		f.Add(s)
	}
	fuzzcorpus.AddStrings(f, imageCorpusDir)
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ref.Parse(s)
		if err != nil {
			if !errors.Is(err, ref.ErrInvalid) {
				t.Fatalf("Parse(%q) error %q does not match ErrInvalidReference", s, err)
			}
			return
		}
		if r.Repo == "" || (r.Tag == "" && r.Digest == "") {
			t.Fatalf("Parse(%q) = %+v: missing repo, or tag and digest", s, r)
		}
		again, err := ref.Parse(r.String())
		if err != nil {
			t.Fatalf("Parse(%q) = %+v, but Parse(%q): %v", s, r, r.String(), err)
		}
		if diff := cmp.Diff(r, again); diff != "" {
			t.Fatalf("Parse(%q).String() = %q does not round trip (-want +got):\n%s", s, r.String(), diff)
		}
		if _, err := ref.ParseRepo(r.Repo); err != nil {
			t.Fatalf("ParseRepo(%q) of a parsed reference: %v", r.Repo, err)
		}
	})
}

// imageCorpusDir holds hand-written seeds in Go's corpus format
// ("go test fuzz v1", then one string value). It sits in the repository's
// testdata with the other corpora rather than in this package's testdata,
// so the seeds are loaded here, as pkg/manifest's FuzzRewrite loads its own;
// crashers the fuzzer finds still land in ./testdata/fuzz/FuzzParse and
// should be moved there.
const imageCorpusDir = "../../testdata/fuzz/FuzzParseImage"

func TestSplitAndShortForms(t *testing.T) {
	tests := []struct {
		in          string
		split       ref.Ref
		short, base string
	}{
		{"127.0.0.1:5000/team/hello:v1@" + dig, ref.Ref{Repo: "127.0.0.1:5000/team/hello", Tag: "v1", Digest: dig}, "hello:v1@sha256:4f1c2a9e0000", "hello"},
		{"127.0.0.1:5000/team/hello@" + dig, ref.Ref{Repo: "127.0.0.1:5000/team/hello", Digest: dig}, "hello@sha256:4f1c2a9e0000", "hello"},
		{"nginx:1.27", ref.Ref{Repo: "nginx", Tag: "1.27"}, "nginx:1.27", "nginx"},
		{"reg:5000/app", ref.Ref{Repo: "reg:5000/app"}, "app", "app"},
	}
	for _, tc := range tests {
		got := ref.Split(tc.in)
		if got != tc.split {
			t.Errorf("Split(%q) = %+v, want %+v", tc.in, got, tc.split)
		}
		if got.String() != tc.in {
			t.Errorf("Split(%q).String() = %q", tc.in, got.String())
		}
		if s := got.Short(); s != tc.short {
			t.Errorf("Short(%q) = %q, want %q", tc.in, s, tc.short)
		}
		if b := got.Base(); b != tc.base {
			t.Errorf("Base(%q) = %q, want %q", tc.in, b, tc.base)
		}
	}
	if r, ok := ref.Loose(" nginx:1.27 "); !ok || r.Repo != "index.docker.io/library/nginx" || r.Tag != "1.27" {
		t.Errorf("Loose(nginx:1.27) = %+v, %v", r, ok)
	}
	if _, ok := ref.Loose("{{ .Values.image }}"); ok {
		t.Error("Loose accepts a template placeholder")
	}
	if got := ref.ShortDigestN(dig, 8); got != "sha256:4f1c2a9e" {
		t.Errorf("ShortDigestN = %q", got)
	}
	if got := ref.ShortAt("candidate@0123456789abcdef0123456789abcdef01234567"); got != "candidate@0123456789ab" {
		t.Errorf("ShortAt = %q", got)
	}
	if got := ref.ShortSHA("0123456789abcdef0123456789abcdef01234567"); got != "0123456789ab" {
		t.Errorf("ShortSHA = %q", got)
	}
	if got := ref.ShortSHA("src-v1-build-20261130"); got != "src-v1-build-20261130" {
		t.Errorf("ShortSHA of what is not a hash = %q, want it whole", got)
	}
}

// Canonical and ParseRepo follow go-containerregistry's name rules, which
// the registry client applies; this holds the copy equal to the original.
func TestCanonicalAgreesWithGGCR(t *testing.T) {
	inputs := []string{
		"nginx", "library/nginx", "docker.io/nginx", "docker.io/library/nginx", "index.docker.io/nginx",
		"acme/app", "127.0.0.1:5000/team/hello", "localhost/a", "localhost:5000/a", "localhost",
		"[::1]:5000/team/hello", "us-docker.pkg.dev/acme/apps/hello", "reg.example/a__b/c-d--e/f.g_h",
		"Reg.Example:443/a", "reg.example/A", "a/B", "", "/", "a/", "reg.example/", "a b", "reg.example:x/a",
		"reg.example:/a", "ü/a", "reg.example/ü", "{{ .Values.image }}", "a//b", strings.Repeat("a", 256),
		"reg.example/" + strings.Repeat("a", 255), "reg.exa mple/a", "reg.example/a:b", "user@reg/a", "%41/a",
	}
	for _, in := range inputs {
		want, werr := name.NewRepository(in, name.WeakValidation)
		got, ok := ref.Canonical(in)
		if (werr == nil) != ok || ok && got != want.Name() {
			t.Errorf("Canonical(%q) = %q, %v; go-containerregistry: %q, %v", in, got, ok, want.Name(), werr)
		}
	}
}

func FuzzCanonical(f *testing.F) {
	for _, s := range []string{"nginx", "127.0.0.1:5000/team/hello", "[::1]:5000/a", "docker.io/x", "a/B"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		want, werr := name.NewRepository(in, name.WeakValidation)
		got, ok := ref.Canonical(in)
		if strings.TrimSpace(in) != in {
			return // Canonical trims, as manifests are read
		}
		if (werr == nil) != ok || ok && got != want.Name() {
			t.Errorf("Canonical(%q) = %q, %v; go-containerregistry: %q, %v", in, got, ok, want.Name(), werr)
		}
	})
}
