# shellcheck shell=sh
# _gm_apply_token: the token manifest on stdin, applied server-side. kubectl's output is never shown (it may echo
# the token); a permission the API server refused is named, by the one clause of it that holds no contents. Needs the
# settings GM_NAMESPACE and GM_FIELD_MANAGER.
# shellcheck disable=SC2154 # _gm_dir: made by preamble.sh, which comes first in every step's script
_gm_apply_token() {
  if ! k apply --server-side --force-conflicts --field-manager="$GM_FIELD_MANAGER" -f - >/dev/null \
    2>"$_gm_dir/apply-errors"; then
    if _gm_refused=$(_gm_forbidden "$_gm_dir/apply-errors"); then
      echo "error: could not put the bootstrap token in place in namespace $GM_NAMESPACE: $_gm_refused. \
$(_gm_rbac_fix)" >&2
      exit 1
    fi
    echo "error: could not put the bootstrap token in place in namespace $GM_NAMESPACE (kubectl apply failed; \
kubectl's output is not shown because it may echo the token). Check that the remote cluster is reachable with the \
configured context or kubeconfig and that it may create Secrets in $GM_NAMESPACE." >&2
    exit 1
  fi
}
