package envrepo

import (
	"strings"
	"testing"
)

// A trailing slash names the same scope; every other unclean form is
// refused with the clean one as a hint.
func TestNormalScope(t *testing.T) {
	tests := []struct{ in, want, wantErr string }{
		{".", ".", ""},
		{"./", ".", ""},
		{"apps/hello", "apps/hello", ""},
		{"apps/hello/", "apps/hello", ""},
		{"apps/hello//", "", `did you mean "apps/hello"`},
		{"./apps/hello", "", `did you mean "apps/hello"`},
		{"apps//hello", "", `did you mean "apps/hello"`},
		{"apps/hello/.", "", `did you mean "apps/hello"`},
		{"/", "", "absolute"},
		{"../x/", "", "leaves the repository"},
		{"", "", "empty"},
	}
	for _, tc := range tests {
		got, err := NormalScope(tc.in)
		if tc.wantErr == "" && (err != nil || got != tc.want) || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("NormalScope(%q) = %q, %v; want %q, error containing %q", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}
