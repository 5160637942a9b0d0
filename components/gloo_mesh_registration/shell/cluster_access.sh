# shellcheck shell=sh
# How the step reaches its cluster, as the program decided it (ClusterAccess, args.py): kubeconfig contents in
# GM_KUBECONFIG_CONTENTS (a secret: written to the private folder, never printed), or a file in GM_KUBECONFIG_FILE
# (messages may name it), and a context in GM_KUBE_CONTEXT. Then `k` (kubectl with that context) and _gm_cause.
# With _gm_ambient_fallback=yes (the token step's delete), a file that is gone gives way to the ambient kubeconfig.
# shellcheck disable=SC2154 # _gm_dir: made by preamble.sh, which comes first in every step's script
if [ -n "${GM_KUBECONFIG_CONTENTS:-}" ]; then
  printf '%s\n' "$GM_KUBECONFIG_CONTENTS" > "$_gm_dir/kubeconfig"
  KUBECONFIG="$_gm_dir/kubeconfig"
  export KUBECONFIG
elif [ -n "${GM_KUBECONFIG_FILE:-}" ]; then
  # shellcheck disable=SC2088 # matches a literal "~/" in the given path; expanded with the HOME of this machine
  case "$GM_KUBECONFIG_FILE" in "~/"*) GM_KUBECONFIG_FILE="$HOME/${GM_KUBECONFIG_FILE#"~/"}" ;; esac
  if [ -f "$GM_KUBECONFIG_FILE" ]; then
    KUBECONFIG="$GM_KUBECONFIG_FILE"
    export KUBECONFIG
  elif [ "${_gm_ambient_fallback:-}" = yes ]; then
    echo "warning: the kubeconfig file $GM_KUBECONFIG_FILE recorded at registration is gone; using the ambient \
kubeconfig${GM_KUBE_CONTEXT:+ with context $GM_KUBE_CONTEXT}" >&2
  else
    echo "error: the kubeconfig file $GM_KUBECONFIG_FILE does not exist" >&2
    exit 1
  fi
fi
unset GM_KUBECONFIG_CONTENTS GM_KUBECONFIG_FILE
# _gm_cause FILE: kubectl's reason from its stderr: the first line that is not a client-go log line (E1202 ...).
_gm_cause() {
  grep -v -E '^[EWI][0-9]{4} ' "$1" | head -n 1 | grep . || tail -n 1 "$1"
}
# _gm_forbidden FILE: the permission the API server refused, as kubectl's stderr in FILE names it (`secrets "x" is
# forbidden: User "u" cannot get resource "secrets" in API group "" in the namespace "n"`), or nothing (status 1).
# That clause holds no object's contents, so it may be shown where the rest of kubectl's output may not.
_gm_forbidden() {
  grep -o -E '[a-z0-9.-]+( "[^"]*")? is forbidden: User "[^"]*" cannot [a-z]+ resource "[^"]*" in API group "[^"]*"( in the namespace "[^"]*"| at the cluster scope)?' "$1" | head -n 1 | grep .
}
# _gm_rbac_fix: the fix for a refused permission.
_gm_rbac_fix() {
  echo "Fix: grant it to this identity; the roles in rbac/ of the gloo-mesh-registration repository hold every \
permission the registration needs (docs/rbac.md)."
}
k() {
  if [ -n "${GM_KUBE_CONTEXT:-}" ]; then "$KUBECTL" --context "$GM_KUBE_CONTEXT" "$@"; else "$KUBECTL" "$@"; fi
}
