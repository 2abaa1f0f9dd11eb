package image_test

import (
	"testing"

	"github.com/ferrycd/ferry/pkg/image"
	"github.com/ferrycd/ferry/pkg/ref"
	"github.com/google/go-cmp/cmp"
)

const dig = "sha256:4f1c2a9e00000000000000000000000000000000000000000000000000000001"

func TestResolvedString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   image.Resolved
		want string
	}{
		{in: image.Resolved{Repo: "r.example/app", Tag: "v1", Digest: dig}, want: "r.example/app:v1@" + dig},
		{in: image.Resolved{Repo: "r.example/app", Digest: dig}, want: "r.example/app@" + dig},
	}
	for _, tc := range tests {
		if got := tc.in.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.in, got, tc.want)
		}
		want := ref.Ref{Repo: tc.in.Repo, Tag: tc.in.Tag, Digest: tc.in.Digest}
		if diff := cmp.Diff(want, tc.in.Ref()); diff != "" {
			t.Errorf("Ref() (-want +got):\n%s", diff)
		}
	}
}
