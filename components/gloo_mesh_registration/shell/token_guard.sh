# shellcheck shell=sh
# The token guard, a program of its own (start_guard.sh starts it as `/bin/sh -c "$GM_TOKEN_GUARD"`): runs detached
# (its own session, so neither a kill of the step nor the kill of the provider's process group at the end of a run
# reaches it) while the token is in place. Once the process it watches is gone, it removes the token unless the agent
# holds its client certificate by then: a token without a certificate never outlives the run that placed it, whether
# that run ended well, failed, or was cancelled (pulumi-command's cancel is a SIGKILL, which skips a step's EXIT
# trap). With a certificate, the token's fate is the certificate step's (removed, or kept for 2.x).
# Arguments: the PID to watch, its own private directory (a copy of the kubeconfig in use, and the PID of the step's
# watch, if any), and the step's private directory: a killed step leaves both behind, with a kubeconfig in them.
# Environment (exported by start_guard.sh): KUBECTL, GM_KUBE_CONTEXT, GM_NAMESPACE, GM_TOKEN_SECRET,
# GM_CLIENT_CERT_SECRET, GM_GUARD_SECONDS, GM_GUARD_RETRY_SECONDS.
# GNU tail waits for a PID in-process (a check a second); elsewhere (no --pid) a loop starts a sleep every second.
tail --pid="$1" -f /dev/null 2>/dev/null || while kill -0 "$1" 2>/dev/null; do sleep 1; done
_gm_own=$2
rm -rf "$3"
if [ -f "$_gm_own/watch" ]; then kill "$(cat "$_gm_own/watch")" 2>/dev/null || true; fi
if [ -f "$_gm_own/kubeconfig" ]; then KUBECONFIG="$_gm_own/kubeconfig"; export KUBECONFIG; fi
if [ -n "${GM_KUBE_CONTEXT:-}" ]; then set -- --context "$GM_KUBE_CONTEXT"; else set --; fi
# The cluster may be unreachable right now (that may be why the run failed): keep trying for a while.
_gm_deadline=$(( $(date +%s) + GM_GUARD_SECONDS ))
while :; do
  if _gm_cert=$("$KUBECTL" "$@" get secret "$GM_CLIENT_CERT_SECRET" -n "$GM_NAMESPACE" --ignore-not-found -o name); then
    if [ -n "$_gm_cert" ]; then break; fi
    if "$KUBECTL" "$@" delete secret "$GM_TOKEN_SECRET" -n "$GM_NAMESPACE" --ignore-not-found >/dev/null; then break; fi
  fi
  if [ "$(date +%s)" -ge "$_gm_deadline" ]; then break; fi
  sleep "$GM_GUARD_RETRY_SECONDS"
done
rm -rf "$_gm_own"
