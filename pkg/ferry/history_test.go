package ferry_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/pkg/ferry"
)

func TestHistory(t *testing.T) {
	f, c1, _, d1, d2 := flow(t)
	ctx := context.Background()
	if _, err := ferry.Promote(ctx, f.env, ferry.PromoteRequest{From: "candidate", To: "production", Commit: c1, Path: "apps/hello"}); err != nil {
		t.Fatal(err)
	}
	f.repo.Commit("production", "scale hello by hand", map[string]string{"apps/hello/note.txt": "scaled\n"})
	f.repo.Commit("production", "unrelated", map[string]string{"apps/api/README.md": "x\n"})
	if _, err := ferry.Rollback(ctx, f.env, ferry.RollbackRequest{Env: "production", Path: "apps/hello"}); err != nil {
		t.Fatal(err)
	}
	got, err := ferry.History(ctx, f.env, ferry.HistoryRequest{Env: "production", Path: "apps/hello"})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range got {
		actions = append(actions, e.Action)
	}
	if want := "rollback,manual,promote,manual"; strings.Join(actions, ",") != want {
		t.Fatalf("actions = %v, want %s", actions, want)
	}
	if img := got[2].Images; len(img) != 1 || img[0].Digest != d1 || got[2].PromotedFrom != "candidate@"+c1 || got[2].Sources[0].SourceCommit != "src-v1" {
		t.Errorf("promote entry: %+v", got[2])
	}
	if img := got[1].Images; len(img) != 1 || img[0].Digest != d1 {
		t.Errorf("manual entry images (read from the tree): %+v", got[1].Images)
	}
	if got[3].Images[0].Tag != "v0" {
		t.Errorf("seed entry: %+v", got[3])
	}
	if got[0].RollbackTo == "" {
		t.Errorf("rollback entry: %+v", got[0])
	}
	limited, err := ferry.History(ctx, f.env, ferry.HistoryRequest{Env: "candidate", Path: "apps/hello", Limit: 2})
	if err != nil || len(limited) != 2 || limited[0].Images[0].Digest != d2 || limited[0].Action != "deploy" || limited[1].Action != "deploy" {
		t.Errorf("limit 2: %+v, %v", limited, err)
	}
}
