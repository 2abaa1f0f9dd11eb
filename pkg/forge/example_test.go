package forge_test

import (
	"fmt"

	"github.com/ferrycd/ferry/pkg/forge"
)

// The CLI defaults the host, repository and API from the env repo's URL.
func ExampleParse() {
	for _, u := range []string{
		"git@github.com:acme/env.git",
		"https://ghe.example.com/acme/env.git",
		"https://gitlab.example.com/platform/deploy/env.git",
	} {
		host, owner, name, err := forge.Parse(u)
		if err != nil {
			panic(err)
		}
		fmt.Println(host, owner, name)
	}
	fmt.Println(forge.GitHubAPI("github.com"))
	fmt.Println(forge.GitHubAPI("ghe.example.com"))
	fmt.Println(forge.GitLabAPI("gitlab.example.com"))
	// Output:
	// github.com acme env
	// ghe.example.com acme env
	// gitlab.example.com platform/deploy env
	// https://api.github.com
	// https://ghe.example.com/api/v3
	// https://gitlab.example.com/api/v4
}
