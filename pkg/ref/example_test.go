package ref_test

import (
	"errors"
	"fmt"

	"github.com/ferrycd/ferry/pkg/ref"
)

func ExampleParse() {
	r, err := ref.Parse("nginx:1.27")
	if err != nil {
		panic(err)
	}
	fmt.Println(r.Repo, r.Tag)
	fmt.Println(r)

	r, err = ref.Parse("127.0.0.1:5000/team/hello:v1@sha256:4f1c2a9e00000000000000000000000000000000000000000000000000000001")
	if err != nil {
		panic(err)
	}
	fmt.Printf("%q %q %q\n", r.Repo, r.Tag, r.Digest)

	_, err = ref.Parse("127.0.0.1:5000/team/hello")
	fmt.Println(err)
	fmt.Println(errors.Is(err, ref.ErrInvalid))
	// Output:
	// index.docker.io/library/nginx 1.27
	// index.docker.io/library/nginx:1.27
	// "127.0.0.1:5000/team/hello" "v1" "sha256:4f1c2a9e00000000000000000000000000000000000000000000000000000001"
	// invalid image reference "127.0.0.1:5000/team/hello": no tag or digest; want 127.0.0.1:5000/team/hello:<tag> or 127.0.0.1:5000/team/hello@sha256:... (ferry never assumes "latest")
	// true
}

func ExampleRef_Short() {
	r := ref.Split("us-docker.pkg.dev/acme/apps/hello:v1@sha256:4f1c2a9e00000000000000000000000000000000000000000000000000000001")
	fmt.Println(r.Short())
	fmt.Println(ref.ShortAt("candidate@0123456789abcdef0123456789abcdef01234567"))
	// Output:
	// hello:v1@sha256:4f1c2a9e0000
	// candidate@0123456789ab
}
