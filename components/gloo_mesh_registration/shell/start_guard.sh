# shellcheck shell=sh
# _gm_start_guard, _gm_stop_guard and _gm_remove_token: the token guard (token_guard.sh, in the setting
# GM_TOKEN_GUARD) started and stopped, and the token removed. Needs the settings GM_NAMESPACE, GM_TOKEN_SECRET,
# GM_CLIENT_CERT_SECRET, GM_GUARD_SECONDS, GM_GUARD_RETRY_SECONDS.
# shellcheck disable=SC2154 # _gm_dir: made by preamble.sh, which comes first in every step's script
_gm_guard_pid=
# _gm_start_guard PID: start the token guard watching PID.
_gm_start_guard() {
  _gm_guard_dir=$(umask 077 && mktemp -d)
  if [ -n "${KUBECONFIG:-}" ] && [ -f "$KUBECONFIG" ]; then cp "$KUBECONFIG" "$_gm_guard_dir/kubeconfig"; fi
  export KUBECTL GM_TOKEN_SECRET GM_CLIENT_CERT_SECRET GM_NAMESPACE GM_GUARD_SECONDS GM_GUARD_RETRY_SECONDS
  if [ -n "${GM_KUBE_CONTEXT:-}" ]; then export GM_KUBE_CONTEXT; fi
  if command -v setsid >/dev/null 2>&1; then
    setsid /bin/sh -c "$GM_TOKEN_GUARD" gm-token-guard "$1" "$_gm_guard_dir" "$_gm_dir" </dev/null >/dev/null 2>&1 &
  else
    /bin/sh -c "$GM_TOKEN_GUARD" gm-token-guard "$1" "$_gm_guard_dir" "$_gm_dir" </dev/null >/dev/null 2>&1 &
  fi
  _gm_guard_pid=$!
}
# _gm_stop_guard: the step cleaned up after itself; its guard has nothing left to do.
_gm_stop_guard() {
  if [ -n "$_gm_guard_pid" ]; then kill "$_gm_guard_pid" 2>/dev/null || true; rm -rf "$_gm_guard_dir"; fi
}
# _gm_remove_token: remove the token, saying so only when there was one. If the cluster does not answer, the guard
# (still running) keeps trying.
_gm_remove_token() {
  if _gm_removed=$(k delete secret "$GM_TOKEN_SECRET" -n "$GM_NAMESPACE" --ignore-not-found -o name 2>/dev/null); then
    _gm_stop_guard
    if [ -n "$_gm_removed" ]; then echo "bootstrap token removed from namespace $GM_NAMESPACE" >&2; fi
  else
    echo "warning: could not remove the bootstrap token from namespace $GM_NAMESPACE now; a guard keeps trying for \
$((GM_GUARD_SECONDS / 60)) minutes, and the next pulumi up removes it" >&2
    return 1
  fi
}
