package ferry_test

import (
	"context"
	"testing"

	"github.com/ferrycd/ferry/pkg/ferry"
)

func TestDiff(t *testing.T) {
	f, _, _, d1, d2 := flow(t)
	ctx := context.Background()
	host := f.reg.Host
	res, err := ferry.Diff(ctx, f.env, ferry.DiffRequest{From: "candidate", To: "production", Path: "."})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || len(res.Apps) != 2 {
		t.Fatalf("diff: %+v", res)
	}
	hello := res.Apps[1]
	if hello.Dir != "apps/hello" || len(hello.Images) != 1 || len(hello.Modified) != 2 {
		t.Fatalf("hello: %+v", hello)
	}
	if ch := hello.Images[0]; ch.Name != host+"/team/hello" || ch.Old != host+"/team/hello:v0" || ch.New != host+"/team/hello:v2@"+d2 {
		t.Errorf("image change: %+v", ch)
	}
	if res.Apps[0].Dir != "apps" || len(res.Apps[0].Added) != 1 { // the symlink apps/link
		t.Errorf("apps: %+v", res.Apps[0])
	}
	_ = d1
	// After promoting, there is nothing left to diff.
	if _, err := ferry.Promote(ctx, f.env, ferry.PromoteRequest{From: "candidate", To: "production", Path: "."}); err != nil {
		t.Fatal(err)
	}
	res, err = ferry.Diff(ctx, f.env, ferry.DiffRequest{From: "candidate", To: "production", Path: "apps/hello"})
	if err != nil || res.Changed || len(res.Apps) != 0 {
		t.Errorf("after promote: %+v, %v", res, err)
	}
}
