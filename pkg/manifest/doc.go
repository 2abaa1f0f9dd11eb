// Package manifest pins container images in a tree of Kubernetes YAML files.
//
// [RewriteFile] and [Pin] rewrite every reference to a target repository to
// repo:tag@sha256:..., and [Images] reads them, wherever a [FieldSpec] of
// [DefaultFieldSpecs] points; one walker serves both. That is:
//
//   - the top-level images: list of kustomization files (kustomization.yaml,
//     kustomization.yml, Kustomization), by setting newTag and digest on each
//     entry whose effective name (newName, else name) is the target;
//   - the image of every container, initContainer and ephemeral container,
//     at any depth of a document of any kind but CustomResourceDefinition,
//     as kustomize's images transformer finds them, and every image
//     volume's reference (volumes[].image.reference);
//   - with [Pin], the images field specs of the configurations files a
//     kustomization names, for the files in its directory and below;
//   - in a file with Flux image-automation setter markers
//     ({"$imagepolicy": "NS:NAME[:tag|:name|:digest]"} on a value), the
//     marked fields and nothing else, matched to a target by its
//     [Target.Policy] or by repository (see markers.go).
//
// A reference is matched by its repository, as kustomize matches it: a
// placeholder or malformed tag or digest (repo:{GENERATED_TAG},
// repo@sha256:1111) is pinned like any other.
//
// Helm values are data in the same table too ([HelmFieldSpecs]): a chart's
// values*.yaml (and the files [WithValuesFiles] names), a Flux HelmRelease's
// spec.values, an Argo CD Application's helm valuesObject, values (a string,
// pinned inside its literal block), parameters and kustomize images, and the
// same fields of Argo CD's .argocd-source files. The walker expands a values
// tree into the images in it, found by detection or at the fields
// [WithImageFields] names, so history, diff and the rewriter see the same
// images. A chart's templates are Go templates and are never read.
//
// The edit is byte-exact: the files are parsed only to find where each value
// sits, and the new value is spliced into the original text. Comments, blank
// lines, indentation, quoting, key order, line endings and a missing final
// newline survive untouched, so the commit that carries the change shows only
// the lines that matter. The YAML writers in kyaml and yaml.v3 cannot promise
// that; they re-indent, drop blank lines and move comments.
//
// Values the splice cannot edit safely (block scalars, scalars spanning several
// lines, aliases) are refused with an error rather than guessed at, and every
// rewritten file is parsed again to check that each reference now reads as
// intended.
//
// The package knows nothing of git or registries: digests come in through
// [Target], and the caller decides what to do with the new bytes.
package manifest
