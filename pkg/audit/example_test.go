package audit_test

import (
	"fmt"

	"github.com/ferrycd/ferry/pkg/audit"
)

func ExampleRecord_Format() {
	rec := audit.Record{
		Action: audit.ActionDeploy,
		Env:    "candidate",
		App:    "hello",
		Path:   "apps/hello",
		Images: []string{"us-docker.pkg.dev/acme/apps/hello:abc1234@sha256:4f1c2a9e00000000000000000000000000000000000000000000000000000001"},
		Sources: []audit.Source{{
			SourceRepo:   "https://github.com/acme/hello",
			SourceCommit: "abc1234def",
			BuildID:      "8d1f",
		}},
	}
	fmt.Print(rec.Format(""))
	// Output:
	// deploy hello to candidate: sha256:4f1c2a9e (hello:abc1234)
	//
	// Built from acme/hello@abc1234def
	//
	// Ferry-Action: deploy
	// Ferry-Env: candidate
	// Ferry-App: hello
	// Ferry-Path: apps/hello
	// Ferry-Image: us-docker.pkg.dev/acme/apps/hello:abc1234@sha256:4f1c2a9e00000000000000000000000000000000000000000000000000000001
	// Ferry-Source-Repo: https://github.com/acme/hello
	// Ferry-Source-Commit: abc1234def
	// Ferry-Build-ID: 8d1f
}

func ExampleParse() {
	msg := "roll back hello on production to 0123456789ab\n\n" +
		"Ferry-Action: rollback\nFerry-Env: production\nFerry-Path: apps/hello\n" +
		"Ferry-Rollback-To: 0123456789abcdef0123456789abcdef01234567\n"
	rec := audit.Parse(msg)
	fmt.Println(rec.Action, rec.Env, rec.Path, rec.RollbackTo)
	fmt.Println(audit.Parse("fix a typo by hand").Action)
	// Output:
	// rollback production apps/hello 0123456789abcdef0123456789abcdef01234567
	// manual
}
