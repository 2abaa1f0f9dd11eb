package image_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ferrycd/ferry/pkg/image"
)

func ExampleResolver_Resolve() {
	// An in-process registry holding one (empty, so reproducible) image.
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	tag, err := name.NewTag(host + "/team/hello:v1")
	if err != nil {
		panic(err)
	}
	if err := remote.Write(tag, empty.Image); err != nil {
		panic(err)
	}

	// This registry needs no credentials; the default keychain would read
	// the docker config.json and Google application default credentials.
	r := image.NewResolver(image.WithKeychain(authn.NewMultiKeychain()))
	ctx := context.Background()
	res, err := r.Resolve(ctx, host+"/team/hello:v1")
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Tag, res.Digest, res.MediaType)
	fmt.Println(res.String() == host+"/team/hello:v1@"+res.Digest)

	_, err = r.Resolve(ctx, host+"/team/hello:v9")
	fmt.Println(errors.Is(err, image.ErrNotFound), strings.ReplaceAll(err.Error(), host, "HOST"))
	// Output:
	// v1 sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4 application/vnd.docker.distribution.manifest.v2+json
	// true
	// true tag v9 not found in HOST/team/hello
}
