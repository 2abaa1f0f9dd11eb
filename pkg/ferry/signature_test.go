package ferry_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/internal/testsign"
	"github.com/ferrycd/ferry/pkg/ferry"
	"github.com/ferrycd/ferry/pkg/sign"
	"github.com/google/go-cmp/cmp"
)

// Commits made with Env.Signer verify in History; Promote with
// RequireSigned carries a verified commit, and refuses an unsigned one
// and one by a key the Verifier does not hold, before writing anything.
func TestSignedHistoryAndPromote(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	alice := testsign.SSHKey(t, "ed25519", 0, "")
	mallory := testsign.SSHKey(t, "ecdsa", 0, "")
	load := func(k testsign.Key) sign.Signer {
		s, err := sign.Load(k.Private, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	v, err := sign.LoadVerifier(testsign.AllowedSigners(t, "alice@example.com "+alice.Line), "")
	if err != nil {
		t.Fatal(err)
	}
	f.env.Verifier = v
	deploy := func(tag string, s sign.Signer) string {
		t.Helper()
		f.env.Signer = s
		f.reg.Push(t, "team/hello:"+tag)
		rep, err := ferry.Deploy(ctx, f.env, ferry.DeployRequest{Env: "candidate", Path: "apps/hello", Images: []string{f.reg.Host + "/team/hello:" + tag}})
		if err != nil {
			t.Fatal(err)
		}
		return rep.Commit
	}
	byAlice := deploy("v1", load(alice))
	byMallory := deploy("v2", load(mallory))
	byHand := f.repo.Commit("candidate", "scale hello by hand", map[string]string{"apps/hello/note.txt": "scaled\n"})

	hist, err := ferry.History(ctx, f.env, ferry.HistoryRequest{Env: "candidate", Path: "apps/hello", Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range hist {
		got = append(got, e.Signature.String())
	}
	want := []string{
		"unsigned",
		"BAD ssh: signed by SSH key " + mallory.Fingerprint + ", which is not among the allowed signers",
		"verified ssh alice@example.com",
		"unsigned", // the seed
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("history signatures (-want +got):\n%s", diff)
	}
	if hist[2].Signature.Key != alice.Fingerprint {
		t.Errorf("verified entry's key %q, want %s", hist[2].Signature.Key, alice.Fingerprint)
	}
	var text strings.Builder
	ferry.WriteHistory(&text, hist)
	if !strings.Contains(text.String(), "SIGNATURE") || !strings.Contains(text.String(), "verified ssh alice@example.com") {
		t.Errorf("history text lacks the signature column:\n%s", text.String())
	}
	plain, err := ferry.History(ctx, f.env, ferry.HistoryRequest{Env: "candidate", Path: "apps/hello"})
	if err != nil || plain[0].Signature != nil {
		t.Errorf("history without Verify: %v, signature %+v", err, plain[0].Signature)
	}

	f.env.Signer = load(alice)
	for _, tc := range []struct {
		name, commit string
		verifier     *sign.Verifier
		reason       string // "" for a promote that goes through
	}{
		{name: "unsigned tip", reason: "refusing to promote candidate@" + byHand[:12] + ": the commit is not signed"},
		{name: "signer not allowed", commit: byMallory, reason: "refusing to promote candidate@" + byMallory[:12] + ": its signature does not verify: signed by SSH key " + mallory.Fingerprint},
		{name: "no keys", commit: byAlice, verifier: &sign.Verifier{}, reason: "no key to verify them"},
		{name: "verified", commit: byAlice},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := f.env
			if tc.verifier != nil {
				e.Verifier = *tc.verifier
			}
			before := f.repo.Tip("production")
			rep, err := ferry.Promote(ctx, e, ferry.PromoteRequest{From: "candidate", To: "production", Commit: tc.commit, Path: "apps/hello", RequireSigned: true})
			if tc.reason != "" {
				if err == nil || !strings.Contains(err.Error(), tc.reason) {
					t.Fatalf("error %v, want %q", err, tc.reason)
				}
				if tc.verifier == nil && !errors.Is(err, ferry.ErrUnverified) {
					t.Errorf("error %v is not ErrUnverified", err)
				}
				if after := f.repo.Tip("production"); after != before {
					t.Errorf("production moved from %s to %s", before, after)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// The promote's own commit is signed with Env.Signer.
			prod, err := ferry.History(ctx, e, ferry.HistoryRequest{Env: "production", Path: "apps/hello", Limit: 1, Verify: true})
			if err != nil {
				t.Fatal(err)
			}
			if prod[0].Commit != rep.Commit || prod[0].Signature.String() != "verified ssh alice@example.com" {
				t.Errorf("production's tip %s: %s", prod[0].Commit, prod[0].Signature)
			}
		})
	}
}
