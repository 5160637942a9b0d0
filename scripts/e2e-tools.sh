#!/usr/bin/env bash
# Builds the real tools of the real-engine suite with `go build` from their published Go modules, pinned by the
# wrapper modules under toolchain/ (go.mod + go.sum), into a cache folder outside the work tree:
#   $GLOO_E2E_CACHE (default ~/.cache/gloo-registration-e2e)/<tool>-<hash of its wrapper and the Go version>/
# A tool is rebuilt only when its wrapper (its pinned versions) or the Go version changes; Go's own module and
# build caches make a rebuild after a small change quick. Every tool lands in one bin/ folder of symlinks.
#
#   scripts/e2e-tools.sh                 build what is missing, progress on stderr, then the bin folder on stdout
#   scripts/e2e-tools.sh --print-bin-dir print only the bin folder (building first, quietly, if needed)
#
# Downloads only from the Go module proxy (and nothing at all once the caches are warm).
set -euo pipefail
cd "$(dirname "$0")/.."

quiet=false
if [ "${1:-}" = "--print-bin-dir" ]; then
  quiet=true
elif [ $# -gt 0 ]; then
  echo "usage: $0 [--print-bin-dir]" >&2
  exit 2
fi

say() { if ! $quiet; then echo "$@" >&2; fi; }

if ! command -v go >/dev/null 2>&1; then
  echo "error: go is not on PATH; the real-engine tools are built from Go modules (Go 1.26 or later is needed)" >&2
  exit 1
fi

cache="${GLOO_E2E_CACHE:-$HOME/.cache/gloo-registration-e2e}"
bin="$cache/bin"
mkdir -p "$bin"
goversion=$(go env GOVERSION)
export GOFLAGS=-mod=mod

# key TOOL: the cache folder name for a wrapper, from its pinned module graph and the Go version.
key() {
  local dir="toolchain/$1"
  local sum
  sum=$( { cat "$dir/go.mod" "$dir/go.sum"; find "$dir" -name '*.go' -print0 | sort -z | xargs -0 cat; echo "$goversion"; } | sha256sum | cut -c1-16)
  echo "$1-$sum"
}

# build TOOL 'OUTPUTS' CMD...: runs CMD in toolchain/TOOL with $out set to the cache folder, unless that folder is
# complete; then links each of OUTPUTS into bin/.
build() {
  local tool=$1 outputs=$2
  shift 2
  local out
  out="$cache/$(key "$tool")"  # apart from `local`, so that a failing key stops the build (errexit)
  local missing=false
  for o in $outputs; do [ -x "$out/$o" ] || missing=true; done
  if $missing; then
    say "== building $tool ($outputs) into $out"
    local started=$SECONDS
    rm -rf "$out.tmp"
    mkdir -p "$out.tmp"
    # Not in an `if` or `||`: there bash would ignore errexit inside the build function, so a failed step (a copy
    # from a module not yet downloaded, say) would run on into a confusing compiler error.
    local status=0
    set +e
    (set -e; cd "toolchain/$tool"; out="$out.tmp" "$@") >"$cache/$tool.log" 2>&1
    status=$?
    set -e
    if [ "$status" -ne 0 ]; then
      echo "error: building $tool failed; the last lines of $cache/$tool.log:" >&2
      tail -n 30 "$cache/$tool.log" >&2
      exit 1
    fi
    rm -rf "$out"
    mv "$out.tmp" "$out"
    say "   $tool built in $((SECONDS - started)) s"
  else
    say "== $tool: cached in $out"
  fi
  for o in $outputs; do ln -sfn "$out/$o" "$bin/$o"; done
}

actionlint_version=v1.7.12
build_actionlint() {
  # The linter of .github/workflows/*.yml (scripts/test.sh), stamped as its releases are (GoReleaser's version,
  # without the v: `actionlint -version` and the links of -help then name the release).
  go build -trimpath \
    -ldflags "-s -w -X github.com/rhysd/actionlint.version=${actionlint_version#v} -X 'github.com/rhysd/actionlint.installedFrom=built from its Go module by scripts/e2e-tools.sh'" \
    -o "$out/actionlint" github.com/rhysd/actionlint/cmd/actionlint
}

pulumi_version=v3.274.1
build_pulumi() {
  go build -trimpath -tags osusergo,grpcnotrace \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$pulumi_version" \
    -o "$out/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
}

build_language_python() {
  # The host and its companion scripts come from the same sdk/v3 release (v3.68.0, see the wrapper's go.mod).
  local version=v3.68.0
  go build -trimpath -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$version" \
    -o "$out/pulumi-language-python" github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python
  local sdk
  sdk=$(go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)
  # Module zips drop file modes: the host runs the executor as `python <exec>`, the policy shim is run directly.
  install -m 0755 "$sdk/python/cmd/pulumi-language-python-exec" "$out/pulumi-language-python-exec"
  install -m 0755 "$sdk/python/dist/pulumi-analyzer-policy-python" "$out/pulumi-analyzer-policy-python"
  install -m 0755 "$sdk/python/dist/pulumi-resource-pulumi-python" "$out/pulumi-resource-pulumi-python"
}

build_language_nodejs() {
  # The same sdk/v3 release as the Python host (see the wrapper's go.mod); it runs `node <@pulumi/pulumi>/cmd/run`
  # from the program's own node_modules, so the Node SDK is the program's (npm), not this release's.
  local version=v3.68.0
  go build -trimpath -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$version" \
    -o "$out/pulumi-language-nodejs" github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs
}

build_language_codegen() {
  # Only GeneratePackage, for `pulumi package gen-sdk` (see toolchain/language-codegen/main.go): the modern Node.js
  # and Go language hosts are not served by the proxy. The test links it as pulumi-language-nodejs and -go.
  go build -trimpath -ldflags "-s -w -X main.version=$pulumi_version" -o "$out/pulumi-language-codegen" .
}

yaml_version=v1.25.0
build_language_yaml() {
  # pulumi-yaml v1.25.0 is the newest version the proxy serves (`go list -m github.com/pulumi/pulumi-yaml@latest`);
  # its go.mod has no replace directives, so its main package builds as it is.
  go build -trimpath -ldflags "-s -w -X github.com/pulumi/pulumi-yaml/pkg/version.Version=${yaml_version#v}" \
    -o "$out/pulumi-language-yaml" github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml
}

kubernetes_provider_version=4.25.0
build_kubernetes_provider() {
  # `go list -m` prints an empty Dir for a module not downloaded yet (a cold module cache): download it first.
  go mod download github.com/pulumi/pulumi-kubernetes/provider/v4
  local src
  src=$(go list -m -f '{{.Dir}}' github.com/pulumi/pulumi-kubernetes/provider/v4)
  local main=cmd/pulumi-resource-kubernetes
  install -m 0644 "$src/$main/schema.json" "$src/$main/terraform-mapping.json" "$main/"
  go build -trimpath \
    -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$kubernetes_provider_version" \
    -o "$out/pulumi-resource-kubernetes" "./$main"
}

kubernetes_version=v1.37.2
build_kubernetes() {
  # Version-stamped as hack/lib/version.sh does: unstamped servers report v0.0.0, which pulumi-kubernetes reads as
  # a pre-1.24 cluster (it then waits for ServiceAccount token secrets that never come).
  local minor=${kubernetes_version#v1.}
  minor=${minor%%.*}
  local ldflags="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags="$ldflags -X $pkg.gitVersion=$kubernetes_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags="$ldflags -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  go build -trimpath -pgo=off -ldflags "$ldflags" -o "$out/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubectl
}

build_etcd() {
  go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3
}

helm_version=v3.22.0
build_helm() {
  go build -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version" \
    -o "$out/helm" helm.sh/helm/v3/cmd/helm
}

build_seaweedfs() {
  # `weed mini` is the S3 server of the S3 state scenarios (lab/object_store.py); the wrapper's go.mod pins the
  # pseudo-version (see its tools.go for why SeaweedFS). The binary reports its own version (`weed version`: 4.53).
  go build -trimpath -ldflags "-s -w" -o "$out/weed" github.com/seaweedfs/seaweedfs/weed
}

started=$SECONDS
build actionlint "actionlint" build_actionlint
build pulumi "pulumi" build_pulumi
build language-python "pulumi-language-python pulumi-language-python-exec pulumi-analyzer-policy-python pulumi-resource-pulumi-python" build_language_python
build language-nodejs "pulumi-language-nodejs" build_language_nodejs
build language-codegen "pulumi-language-codegen" build_language_codegen
build language-yaml "pulumi-language-yaml" build_language_yaml
build kubernetes-provider "pulumi-resource-kubernetes" build_kubernetes_provider
build kubernetes "kube-apiserver kube-controller-manager kubectl" build_kubernetes
build etcd "etcd" build_etcd
build helm "helm" build_helm
build seaweedfs "weed" build_seaweedfs
say "== tools ready in $((SECONDS - started)) s"
echo "$bin"
