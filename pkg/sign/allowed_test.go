package sign

import (
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"
)

// The pattern lists of principals and namespaces= match as OpenSSH's
// match_pattern_list does.
func TestMatchList(t *testing.T) {
	for _, tc := range []struct {
		s, list string
		want    int
	}{
		{"git", "git", 1},
		{"git", "file,git", 1},
		{"git", "file,email", 0},
		{"git", "g*", 1},
		{"git", "g?t", 1},
		{"git", "g?", 0},
		{"git", "*", 1},
		{"git", "*,!git", -1},
		{"git", "!file", 0},
		{"", "*", 1},
		{"alice@example.com", "*@example.com", 1},
		{"alice@example.org", "*@example.com", 0},
	} {
		if got := matchList(tc.s, tc.list); got != tc.want {
			t.Errorf("matchList(%q, %q) = %d, want %d", tc.s, tc.list, got, tc.want)
		}
	}
}

func TestParseAllowedSigners(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	key, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
	for _, tc := range []struct {
		name, in string
		want     []AllowedSigner
		err      string
	}{
		{name: "plain", in: "alice@example.com " + line + " laptop\n",
			want: []AllowedSigner{{Principals: "alice@example.com", Key: key}}},
		{name: "comments, blank lines, several principals", in: "# team\n\n  alice@example.com,bob@example.com " + line + "\n",
			want: []AllowedSigner{{Principals: "alice@example.com,bob@example.com", Key: key}}},
		{name: "quoted principals", in: `"alice@example.com,*@ci.example.com" ` + line,
			want: []AllowedSigner{{Principals: "alice@example.com,*@ci.example.com", Key: key}}},
		{name: "options", in: `ci@example.com namespaces="git,file",valid-after="20260101",valid-before="202701020304Z" ` + line,
			want: []AllowedSigner{{Principals: "ci@example.com", Key: key, Namespaces: "git,file",
				ValidAfter:  time.Date(2026, 1, 1, 0, 0, 0, 0, time.Local),
				ValidBefore: time.Date(2027, 1, 2, 3, 4, 0, 0, time.UTC)}}},
		{name: "cert-authority", in: `*@example.com cert-authority ` + line,
			want: []AllowedSigner{{Principals: "*@example.com", Key: key, CertAuthority: true}}},
		{name: "no key", in: "# ok\nalice@example.com\n", err: "line 2: want principals"},
		{name: "no principals", in: line, err: "line 1: principals \"ssh-ed25519\": no public key"},
		{name: "bad key", in: "alice@example.com ssh-ed25519 AAAAnotbase64\n", err: "line 1: principals \"alice@example.com\": no public key"},
		{name: "unknown option", in: `alice@example.com no-touch-required ` + line, err: `line 1: unknown option "no-touch-required"`},
		{name: "bad time", in: `alice@example.com valid-after="2026" ` + line, err: "line 1: valid-after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseAllowedSigners(strings.NewReader(tc.in))
			if tc.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
					t.Fatalf("error %v, want one starting %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b ssh.PublicKey) bool {
				return string(a.Marshal()) == string(b.Marshal())
			})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
