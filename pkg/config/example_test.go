package config_test

import (
	"fmt"

	"github.com/ferrycd/ferry/pkg/config"
)

// exampleFile is ExampleParse's file; the schema test validates it too.
const exampleFile = `version: 1
defaults:
  branch: main
  path: envs/{env}/{app}
environments:
  - name: staging
  - name: production
    repo: [https://git.example.com/org/prod-eu.git, https://git.example.com/org/prod-us.git]
    policy: {pullRequest: true}
`

func ExampleParse() {
	cfg, err := config.Parse("ferry.yaml", []byte(exampleFile))
	if err != nil {
		panic(err)
	}
	for _, e := range cfg.Environments {
		fmt.Printf("%s: %d repos, branch %s, %s, carry %q, pull request %t\n",
			e.Name, len(e.Repos), e.Branch, e.Dir("hello"), e.Carry, e.PullRequest)
	}
	prev, _ := cfg.Previous("production")
	fmt.Println("production is promoted from", prev.Name)

	_, err = config.Parse("ferry.yaml", []byte("version: 1\nenvironments:\n  - name: staging\n    brnach: main\n"))
	fmt.Println(err)
	// Output:
	// staging: 0 repos, branch main, envs/staging/hello, carry "", pull request false
	// production: 2 repos, branch main, envs/production/hello, carry "images", pull request true
	// production is promoted from staging
	// ferry.yaml:4: environments[0]: unknown key "brnach" (known: name, repo, branch, path, carry, policy)
}

func ExampleTemplate_Expand() {
	t := config.Template("apps/{app}/overlays/{env}")
	fmt.Println(t.Expand("staging", "hello"))
	fmt.Println(config.DefaultPath.Expand("staging", "hello"))
	// Output:
	// apps/hello/overlays/staging
	// apps/hello
}

func ExampleTemplate_Match() {
	t := config.Template("envs/{env}/{app}")
	fmt.Println(t.Match("staging", "envs/staging/hello"))
	fmt.Println(t.Match("staging", "envs/production/hello"))
	fmt.Println(t.Match("staging", "envs/staging/hello/base"))
	// Output:
	// hello true
	//  false
	//  false
}

func ExampleTemplate_Parent() {
	for _, t := range []config.Template{"envs/{env}/{app}", "apps/{app}/overlays/{env}", "{app}", "envs/{env}"} {
		if !t.HasApp() {
			fmt.Printf("%s: the one app's directory, %s\n", t, t.Expand("staging", ""))
			continue
		}
		dir, rest := t.Parent("staging")
		fmt.Printf("%s: list %s, keep entries holding %q\n", t, dir, rest)
	}
	// Output:
	// envs/{env}/{app}: list envs/staging, keep entries holding ""
	// apps/{app}/overlays/{env}: list apps, keep entries holding "overlays/staging"
	// {app}: list ., keep entries holding ""
	// envs/{env}: the one app's directory, envs/staging
}
