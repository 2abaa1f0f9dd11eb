package ferry_test

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ferrycd/ferry/pkg/audit"
	"github.com/ferrycd/ferry/pkg/ferry"
)

func ExampleDeployRequest_Validate() {
	req := ferry.DeployRequest{Env: "candidate", Path: "apps/hello/"}
	err := req.Validate()
	var fe *ferry.FieldError
	if errors.As(err, &fe) {
		fmt.Println(fe.Field)
		fmt.Println(err)
		// A command line words the fields as its flags.
		fmt.Println(fe.Format(func(field string) string { return "--" + map[string]string{"Images": "image"}[field] }))
	}

	req.Images = []string{"us-docker.pkg.dev/acme/apps/hello:abc1234"}
	fmt.Println(req.Validate(), req.Path)
	// Output:
	// Images
	// Images is required (e.g. Images us-docker.pkg.dev/acme/apps/hello:abc1234)
	// --image is required (e.g. --image us-docker.pkg.dev/acme/apps/hello:abc1234)
	// <nil> apps/hello
}

func ExampleWriteHistory() {
	ferry.WriteHistory(os.Stdout, []ferry.Entry{{
		Commit: "6d0ffa1103d7a1b2c3d4e5f60718293a4b5c6d7e",
		Time:   time.Date(2026, 11, 22, 20, 43, 0, 0, time.UTC),
		Author: "ferry <ferry@noreply.invalid>",
		Action: "rollback",
		Images: []ferry.Image{{
			Name: "127.0.0.1:5000/demo/hello", Tag: "v1",
			Digest: "sha256:17df661612ac00000000000000000000000000000000000000000000000000",
		}},
		Sources:    []audit.Source{{SourceCommit: "1111111111111111111111111111111111111111", BuildID: "demo-v1"}},
		RollbackTo: "fdf14ca6d645a1b2c3d4e5f60718293a4b5c6d7e",
	}})
	// Output:
	// COMMIT        TIME               ACTION    AUTHOR  IMAGES                        SOURCE        BUILD    NOTE
	// 6d0ffa1103d7  2026-11-22 20:43Z  rollback  ferry   hello:v1@sha256:17df661612ac  111111111111  demo-v1  to fdf14ca6d645
}

func ExampleWriteFanOut() {
	ferry.WriteFanOut(os.Stdout, &ferry.FanOutReport{
		Action: "deploy",
		Targets: []ferry.TargetResult{
			{Repo: "https://git.example.com/env-eu.git", Changed: true, Commit: "6d0ffa1103d7a1b2c3d4e5f60718293a4b5c6d7e", Attempts: 1, Report: &ferry.Report{Changed: true}},
			{Repo: "https://git.example.com/env-us.git", Attempts: 1, Error: "push rejected: candidate in https://git.example.com/env-us.git: pre-receive hook declined"},
		},
		Succeeded: 1, Failed: 1,
	})
	// Output:
	// REPO                                RESULT   COMMIT        ATTEMPTS  ERROR
	// https://git.example.com/env-eu.git  changed  6d0ffa1103d7  1         -
	// https://git.example.com/env-us.git  FAILED   -             1         push rejected: candidate in https://git.example.com/env-us.git: pre-receive hook declined
	// deploy to 2 env repos: 1 succeeded, 1 failed
}

func ExampleWriteStatus() {
	hello := func(tag, digest string) []ferry.Image {
		return []ferry.Image{{Name: "r.example/team/hello", Tag: tag, Digest: "sha256:" + digest + "0000000000000000000000000000000000000000000000000000000000"}}
	}
	deploy := &ferry.Change{Commit: "4f1c2a9e00000000000000000000000000000000", Action: "deploy"}
	rollback := ferry.Change{Commit: "9b8a7c6d00000000000000000000000000000000", Action: "rollback", Subject: "roll back hello on production"}
	ferry.WriteStatus(os.Stdout, &ferry.StatusReport{
		Environments: []ferry.StatusEnv{{Label: "candidate"}, {Label: "production"}},
		Apps: []ferry.AppStatus{
			{App: "hello", Cells: []ferry.Cell{
				{State: ferry.StateCurrent, Images: hello("v1.2.4", "77aa0b12"), Ferry: deploy},
				{Env: "production", State: ferry.StateHeld, Images: hello("v1.2.3", "4f1c2a9e"), Ferry: deploy,
					Held: &ferry.Hold{Change: rollback, Scope: "apps/hello"}, Behind: 2},
			}},
			{App: "api", Cells: []ferry.Cell{
				{State: ferry.StateDrifted, Images: hello("v7", "0d15ea5e"), Ferry: deploy, Drifted: true},
				{State: ferry.StateAbsent},
			}},
		},
	}, false)
	// Output:
	// APP     candidate               production
	// hello   v1.2.4 @77aa0b12  ok    v1.2.3 @4f1c2a9e  held  behind 2
	// api     v7 @0d15ea5e  drifted   -
	//
	// hello on production is held by rollback 9b8a7c6d0000 (roll back hello on production)
}
