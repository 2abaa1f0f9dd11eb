package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"text/template"
)

// appSpec is what varies between the synthetic apps, so that files are
// similar, as in a real env repo, but not identical.
type appSpec struct {
	App, Team, Host, Tag  string
	Digest                string // sha256:..., written as the image's digest when set
	Replicas, MaxReplicas int
	Port, CPU, Mem        int
	CPUTarget             int
	ConfigRevision        int
	Env                   []envVar
	Upstreams             []string
}

type envVar struct{ Name, Value string }

func newAppSpec(n, i int, host string) appSpec {
	r := rand.New(rand.NewPCG(uint64(n), uint64(i)))
	s := appSpec{
		App:            appName(n, i),
		Team:           fmt.Sprintf("team-%02d", i%40),
		Host:           host,
		Tag:            "v1",
		Replicas:       2 + r.IntN(4),
		Port:           8080 + r.IntN(4)*10,
		CPU:            []int{50, 100, 250, 500}[r.IntN(4)],
		Mem:            []int{64, 128, 256, 512}[r.IntN(4)],
		CPUTarget:      60 + r.IntN(4)*5,
		ConfigRevision: 1,
	}
	s.MaxReplicas = s.Replicas * (2 + r.IntN(4))
	for k := range r.IntN(5) {
		s.Env = append(s.Env, envVar{[]string{"OTEL_SERVICE_NAME", "GOMAXPROCS", "FEATURE_FLAGS", "REGION", "CACHE_TTL"}[k],
			[]string{s.App, "2", "checkout-v2,search-v3", "europe-west1", "300s"}[k]})
	}
	for range 1 + r.IntN(3) {
		s.Upstreams = append(s.Upstreams, appName(n, r.IntN(n)))
	}
	return s
}

// appName is app0042: four digits, more when n needs them.
func appName(n, i int) string {
	return fmt.Sprintf("app%0*d", max(4, len(fmt.Sprint(n-1))), i)
}

// appFiles are the five files of each app, in the order they are written.
var appFiles = []string{"kustomization.yaml", "deployment.yaml", "service.yaml", "configmap.yaml", "hpa.yaml"}

var templates = template.Must(template.New("").Parse(`
{{define "kustomization.yaml"}}# {{.App}}: kustomization for the candidate environment.
# Owned by {{.Team}}. The deploy pipeline writes images[].newTag (and the
# digest); everything else is reviewed by hand.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: {{.Team}}
resources:
  - deployment.yaml
  - service.yaml
  - configmap.yaml
  - hpa.yaml
labels:
  - pairs:
      app.kubernetes.io/part-of: {{.Team}}
      app.kubernetes.io/managed-by: kustomize
    includeSelectors: false
commonAnnotations:
  example.com/owner: {{.Team}}
  example.com/runbook: https://runbooks.example.com/{{.Team}}/{{.App}}
  example.com/oncall: https://oncall.example.com/schedules/{{.Team}}
images:
  - name: {{.App}}
    newName: {{.Host}}/team/{{.App}}
    newTag: {{.Tag}}
{{- if .Digest}}
    digest: {{.Digest}}
{{- end}}
{{end}}
{{define "deployment.yaml"}}# {{.App}}: Deployment. Generated from the service template v3; edit
# resources and probes here, the image is set in kustomization.yaml.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{.App}}
  labels:
    app.kubernetes.io/name: {{.App}}
spec:
  replicas: {{.Replicas}}
  selector:
    matchLabels:
      app.kubernetes.io/name: {{.App}}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 25%
      maxUnavailable: 0
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {{.App}}
      annotations:
        example.com/config-revision: "{{.ConfigRevision}}"
    spec:
      securityContext:
        runAsNonRoot: true
      containers:
        - name: server
          image: {{.App}}
          ports:
            - name: http
              containerPort: {{.Port}}
          env:
            - name: CONFIG_FILE
              value: /etc/{{.App}}/app.yaml
{{- range .Env}}
            - name: {{.Name}}
              value: "{{.Value}}"
{{- end}}
          resources:
            requests:
              cpu: {{.CPU}}m
              memory: {{.Mem}}Mi
            limits:
              memory: {{.Mem}}Mi
          readinessProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: 10
          volumeMounts:
            - name: config
              mountPath: /etc/{{.App}}
      volumes:
        - name: config
          configMap:
            name: {{.App}}-config
{{end}}
{{define "service.yaml"}}# {{.App}}: Service. The port name must match the Deployment's container
# port: the mesh routes on it, and the scrape annotations point at it.
apiVersion: v1
kind: Service
metadata:
  name: {{.App}}
  labels:
    app.kubernetes.io/name: {{.App}}
  annotations:
    example.com/scrape: "true"
    example.com/scrape-port: "{{.Port}}"
    example.com/scrape-path: /metrics
spec:
  type: ClusterIP
  sessionAffinity: None
  internalTrafficPolicy: Cluster
  ipFamilyPolicy: SingleStack
  selector:
    app.kubernetes.io/name: {{.App}}
  ports:
    - name: http
      port: 80
      targetPort: http
      protocol: TCP
{{end}}
{{define "configmap.yaml"}}# {{.App}}: configuration, mounted at /etc/{{.App}}/app.yaml. Bump
# example.com/config-revision in deployment.yaml to roll the pods.
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{.App}}-config
  labels:
    app.kubernetes.io/name: {{.App}}
data:
  app.yaml: |
    server:
      port: {{.Port}}
      readTimeout: 5s
      writeTimeout: 10s
      shutdownGrace: 20s
    log:
      level: info
      format: json
      sampling: {initial: 100, thereafter: 10}
    tracing:
      endpoint: otel-collector.observability:4317
      ratio: 0.05
    upstreams:
{{- range .Upstreams}}
      - name: {{.}}
        url: http://{{.}}.svc.cluster.local
        timeout: 2s
        retries: 2
{{- end}}
{{end}}
{{define "hpa.yaml"}}# {{.App}}: autoscaling. minReplicas matches the Deployment's replicas
# so that a rollout never scales the app down first.
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{.App}}
  labels:
    app.kubernetes.io/name: {{.App}}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{.App}}
  minReplicas: {{.Replicas}}
  maxReplicas: {{.MaxReplicas}}
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 300
      policies:
        - type: Percent
          value: 50
          periodSeconds: 60
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{.CPUTarget}}
{{end}}`))

func render(file string, s appSpec) []byte {
	var b bytes.Buffer
	if err := templates.ExecuteTemplate(&b, file, s); err != nil {
		panic(err) // the templates are constants
	}
	return b.Bytes()
}

// historyApp is the app that history commit i (1-based) changes. History
// only touches the first half of the apps; the timed runs deploy apps from
// the second half, whose last change is the first commit.
func historyApp(n, i int) int { return (i * 7919) % max(1, n/2) }

// runApp is the app deployed in round r of rounds.
func runApp(n, r, rounds int) int { return n/2 + r*(n-n/2)/rounds }

// generate fills the bare repository at dir with a candidate branch: one
// commit adding n apps, then commits that each deploy a new tag of one app
// (every third also bumps its config revision). It returns the tip.
func generate(ctx context.Context, dir, host string, n, commits int) (string, error) {
	err := fastImport(ctx, dir, func(w *bufio.Writer) {
		file := func(path string, data []byte) {
			fmt.Fprintf(w, "M 100644 inline %s\ndata %d\n%s\n", path, len(data), data)
		}
		commit := func(i int, msg string) {
			fmt.Fprintf(w, "commit refs/heads/candidate\ncommitter Deploy Bot <deploy@example.com> %d +0000\ndata %d\n%s\n",
				1767225600+i*600, len(msg), msg)
		}

		specs := make([]appSpec, n)
		commit(0, fmt.Sprintf("bootstrap %d apps\n", n))
		file("README.md", []byte("# env\n\nOne directory per app under apps/; the candidate branch is what the candidate cluster runs.\n"))
		for i := range specs {
			specs[i] = newAppSpec(n, i, host)
			for _, f := range appFiles {
				file("apps/"+specs[i].App+"/"+f, render(f, specs[i]))
			}
		}
		for i := 1; i <= commits; i++ {
			s := &specs[historyApp(n, i)]
			s.Tag = fmt.Sprintf("v1.%d", i)
			commit(i, fmt.Sprintf("deploy %s %s to candidate\n", s.App, s.Tag))
			file("apps/"+s.App+"/kustomization.yaml", render("kustomization.yaml", *s))
			if i%3 == 0 {
				s.ConfigRevision++
				file("apps/"+s.App+"/deployment.yaml", render("deployment.yaml", *s))
			}
		}
	})
	if err != nil {
		return "", err
	}
	if err := repack(ctx, dir); err != nil {
		return "", err
	}
	return gitOutput(ctx, dir, "rev-parse", "refs/heads/candidate")
}

// fastImport runs git fast-import in the bare repository dir on the
// stream that write produces.
func fastImport(ctx context.Context, dir string, write func(w *bufio.Writer)) error {
	cmd := exec.CommandContext(ctx, "git", "-C", dir, "fast-import", "--quiet")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	w := bufio.NewWriterSize(stdin, 1<<20)
	write(w)
	err = w.Flush()
	if cerr := stdin.Close(); err == nil {
		err = cerr
	}
	if werr := cmd.Wait(); werr != nil {
		return fmt.Errorf("git fast-import: %v: %s", werr, stderr.String())
	}
	if err != nil {
		return fmt.Errorf("writing to git fast-import: %w", err)
	}
	return nil
}

// repack packs dir with deltas across files, as a git host keeps a
// served repository.
func repack(ctx context.Context, dir string) error {
	if out, err := exec.CommandContext(ctx, "git", "-C", dir, "repack", "-adq").CombinedOutput(); err != nil {
		return fmt.Errorf("git repack: %v: %s", err, out)
	}
	return nil
}

// gitOutput runs git in dir and returns its trimmed stdout.
func gitOutput(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return strings.TrimSpace(string(out)), nil
}
