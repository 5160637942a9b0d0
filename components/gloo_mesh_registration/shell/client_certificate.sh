# shellcheck shell=sh
# The certificate step (lifecycle.client_certificate_step): ensure-client-certificate. Needs the settings
# GM_NAMESPACE, GM_TOKEN_SECRET, GM_CLIENT_CERT_SECRET, GM_CLUSTER, GM_AGENT_DEPLOYMENT, GM_TIMEOUT, GM_CHUNK and
# GM_REMOVE_TOKEN (yes: the token goes once the agent holds its certificate; no: it stays, as 2.x keeps it), the
# environment GM_RELAY_ADDRESS and GM_RELAY_AUTHORITY (for the timeout message), and apply_token.sh and
# start_guard.sh before it.
# shellcheck disable=SC2154 # _gm_step, _gm_dir, _gm_status (preamble.sh), _gm_guard_dir (start_guard.sh)
_gm_token_placed=
_gm_on_exit() {
  if [ -z "$_gm_token_placed" ]; then _gm_stop_guard; return 0; fi  # this run put no token in place
  if [ "$GM_REMOVE_TOKEN" != yes ] && [ "$_gm_status" -eq 0 ]; then _gm_stop_guard; return 0; fi  # registered: the token stays
  _gm_remove_token
}
# _gm_listed NAME: the secret NAME is among the lines of $_gm_present (kubectl's -o name: secret/<name>).
_gm_listed() {
  case "
$_gm_present
" in
    *"
secret/$1
"*) return 0 ;;
  esac
  return 1
}
# One watch per chunk: the API server first sends ADDED for a secret that exists, then events as they happen.
_gm_watch_for_certificate() {
  _gm_seconds=$1
  rm -f "$_gm_dir/events" && mkfifo "$_gm_dir/events"
  # kubectl itself in the background (not the function k, which would run in a subshell): $! must be kubectl, so
  # that the kill below ends the watch instead of orphaning it.
  if [ -n "${GM_KUBE_CONTEXT:-}" ]; then set -- --context "$GM_KUBE_CONTEXT"; else set --; fi
  "$KUBECTL" "$@" get --raw "/api/v1/namespaces/$GM_NAMESPACE/secrets?fieldSelector=metadata.name%3D$GM_CLIENT_CERT_SECRET&watch=1&timeoutSeconds=$_gm_seconds" \
    > "$_gm_dir/events" 2> "$_gm_dir/watch-errors" &
  _gm_watch_pid=$!
  if [ -n "$_gm_guard_pid" ]; then echo "$_gm_watch_pid" > "$_gm_guard_dir/watch"; fi  # the guard ends it on a kill
  _gm_found=1
  if grep -q -m 1 -E '"type": *"(ADDED|MODIFIED)"' < "$_gm_dir/events"; then _gm_found=0; fi
  kill "$_gm_watch_pid" 2>/dev/null || true
  _gm_watch_status=0
  { wait "$_gm_watch_pid"; } 2>/dev/null || _gm_watch_status=$?
  if [ "$_gm_found" -ne 0 ] && [ "$_gm_watch_status" -ne 0 ]; then
    # The watch failed (not merely timed out): say why, and do not spin.
    echo "cluster $GM_CLUSTER: cannot watch secrets in namespace $GM_NAMESPACE: $(_gm_cause "$_gm_dir/watch-errors")" >&2
    sleep 1
  fi
  return "$_gm_found"
}
case "$_gm_step" in
  ensure-client-certificate)
    # One kubectl run asks for both secrets (it prints secret/<name> for each that exists): each run is ~60 ms of CPU.
    if ! _gm_present=$(k get secret "$GM_CLIENT_CERT_SECRET" "$GM_TOKEN_SECRET" -n "$GM_NAMESPACE" --ignore-not-found \
-o name 2>"$_gm_dir/errors"); then
      if _gm_refused=$(_gm_forbidden "$_gm_dir/errors"); then
        echo "error: cluster $GM_CLUSTER: $_gm_refused. $(_gm_rbac_fix)" >&2
      else
        echo "error: cluster $GM_CLUSTER is not reachable: $(_gm_cause "$_gm_dir/errors")" >&2
      fi
      exit 1
    fi
    if _gm_listed "$GM_CLIENT_CERT_SECRET"; then
      if [ "$GM_REMOVE_TOKEN" = yes ] && _gm_listed "$GM_TOKEN_SECRET"; then
        k delete secret "$GM_TOKEN_SECRET" -n "$GM_NAMESPACE" --ignore-not-found >/dev/null
        echo "cluster $GM_CLUSTER: removed a bootstrap token left behind by an earlier run" >&2
      fi
      echo "cluster $GM_CLUSTER: the agent holds its client certificate" >&2
      exit 0
    fi
    ;;
  *) _gm_unknown_step ;;
esac
_gm_start_guard "$$"
_gm_token_placed=yes
_gm_apply_token
_gm_start=$(date +%s)
_gm_elapsed=0
while :; do
  _gm_left=$((GM_TIMEOUT - _gm_elapsed))
  if [ "$_gm_left" -le 0 ]; then
    cat >&2 <<GM_TIMEOUT_MESSAGE
error: cluster $GM_CLUSTER: the agent got no client certificate ($GM_CLIENT_CERT_SECRET in namespace $GM_NAMESPACE) \
within ${GM_TIMEOUT}s.
  relay server address: ${GM_RELAY_ADDRESS:-unknown}, authority: ${GM_RELAY_AUTHORITY:-unknown}
  Usual causes: the relay address is not reachable from the remote cluster (LoadBalancer still pending, wrong port,
  firewall); the authority does not match the relay server certificate; a stale root CA copy; an empty or rotated
  bootstrap token on the management cluster; a sidecar injected into namespace $GM_NAMESPACE; an agent version that
  differs from the server's. Check: kubectl logs deploy/$GM_AGENT_DEPLOYMENT -n $GM_NAMESPACE on the remote cluster.
  The bootstrap token is removed now; the next pulumi up puts it in place again and retries.
GM_TIMEOUT_MESSAGE
    exit 1
  fi
  _gm_step_seconds=$GM_CHUNK
  if [ "$_gm_left" -lt "$_gm_step_seconds" ]; then _gm_step_seconds=$_gm_left; fi
  if _gm_watch_for_certificate "$_gm_step_seconds"; then
    _gm_elapsed=$(( $(date +%s) - _gm_start ))
    echo "cluster $GM_CLUSTER: the agent holds its client certificate (after ${_gm_elapsed}s)" >&2
    exit 0
  fi
  _gm_elapsed=$(( $(date +%s) - _gm_start ))
  if [ "$_gm_elapsed" -lt "$GM_TIMEOUT" ]; then
    echo "cluster $GM_CLUSTER: waiting for the agent's client certificate (${_gm_elapsed}s of ${GM_TIMEOUT}s)" >&2
  fi
done
