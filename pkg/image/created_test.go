package image_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ferrycd/ferry/pkg/image"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestCreated(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	when := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
	push := func(tag string, img v1.Image) string {
		ref, _ := name.NewTag(host + "/team/hello:" + tag)
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		return d.String()
	}
	base, _ := random.Image(64, 1)
	fromConfig, _ := mutate.CreatedAt(base, v1.Time{Time: when})
	fromAnnotation := mutate.Annotations(base, map[string]string{image.AnnotationCreated: when.Add(time.Hour).Format(time.RFC3339)}).(v1.Image)
	epoch, _ := mutate.CreatedAt(base, v1.Time{Time: time.Unix(0, 0)})
	idx, _ := random.Index(64, 1, 2)
	annotatedIdx := mutate.Annotations(idx, map[string]string{image.AnnotationCreated: when.Add(2 * time.Hour).Format(time.RFC3339)}).(v1.ImageIndex)
	ref, _ := name.NewTag(host + "/team/hello:idx")
	if err := remote.WriteIndex(ref, annotatedIdx); err != nil {
		t.Fatal(err)
	}
	idxDigest, _ := annotatedIdx.Digest()

	r := image.NewResolver()
	tests := []struct {
		name, digest string
		want         time.Time
	}{
		{"config created", push("config", fromConfig), when},
		{"manifest annotation wins", push("annotation", fromAnnotation), when.Add(time.Hour)},
		{"epoch is unknown", push("epoch", epoch), time.Time{}},
		{"zero is unknown", push("zero", base), time.Time{}},
		{"index annotation", idxDigest.String(), when.Add(2 * time.Hour)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.Created(context.Background(), host+"/team/hello", tc.digest)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tc.want) {
				t.Errorf("Created = %v, want %v", got, tc.want)
			}
		})
	}
}
