package envrepo_test

import (
	"errors"
	"fmt"

	"github.com/ferrycd/ferry/pkg/envrepo"
)

func ExampleOpen() {
	// Credentials in the URL are moved out of it, so nothing prints them.
	r, err := envrepo.Open("https://x-access-token:ghs_secret@github.com/acme/env.git")
	if err != nil {
		panic(err)
	}
	fmt.Println(r.URL)
	fmt.Println(r)

	_, err = envrepo.Open("ssh://git@github.com/acme/env.git", envrepo.WithKnownHosts("/nonexistent/known_hosts"))
	var fe *envrepo.FileError
	fmt.Println(errors.As(err, &fe), fe.What)
	// Output:
	// https://github.com/acme/env.git
	// https://github.com/acme/env.git
	// true known hosts
}

func ExampleRedact() {
	fmt.Println(envrepo.Redact("fetching from https://user:ghp_token@github.com/acme/env.git failed"))
	// Output:
	// fetching from https://user:***@github.com/acme/env.git failed
}

func ExampleNormalScope() {
	for _, p := range []string{"apps/hello/", ".", "./apps/hello"} {
		s, err := envrepo.NormalScope(p)
		fmt.Printf("%q %q %v\n", p, s, err != nil)
	}
	// Output:
	// "apps/hello/" "apps/hello" false
	// "." "." false
	// "./apps/hello" "" true
}
