# shellcheck shell=sh
# The token Command's steps (lifecycle.token_step): place-bootstrap-token (create), keep-bootstrap-token (update),
# forget-agent-identity (delete). Needs the settings GM_NAMESPACE, GM_TOKEN_SECRET, GM_CLIENT_CERT_SECRET, and
# apply_token.sh and start_guard.sh before it.
# shellcheck disable=SC2154 # _gm_step: set by preamble.sh, which comes first in every step's script
case "$_gm_step" in
  place-bootstrap-token)
    if [ -n "${GM_ADOPT:-}" ]; then
      # Taking over a registered agent: its identity stays as it is (the certificate step checks it).
      echo "adopting the agent in namespace $GM_NAMESPACE: its identity is left as it is" >&2
      exit 0
    fi
    # A client certificate that exists before this registration's agent was installed is stale: the certificate
    # step would take it for success (meshctl does) while the agent cannot use it.
    k delete secret "$GM_CLIENT_CERT_SECRET" -n "$GM_NAMESPACE" --ignore-not-found --wait=false >/dev/null
    # Watch the provider (this step's parent, alive for the whole run): if the run ends before the agent holds its
    # certificate (cancelled during the release, say), the token goes with it.
    _gm_start_guard "$PPID"
    _gm_apply_token
    echo "bootstrap token in place in namespace $GM_NAMESPACE" >&2
    ;;
  keep-bootstrap-token)
    echo "bootstrap token: nothing to do; the client certificate step places it whenever the agent needs it" >&2
    ;;
  forget-agent-identity)
    if ! k delete secret "$GM_TOKEN_SECRET" "$GM_CLIENT_CERT_SECRET" -n "$GM_NAMESPACE" --ignore-not-found >/dev/null
    then
      echo "error: could not remove the bootstrap token and the agent's client certificate from namespace \
$GM_NAMESPACE with the cluster access recorded at registration. Restore that access (context, kubeconfig) and run \
pulumi destroy again, or delete the secrets $GM_TOKEN_SECRET and $GM_CLIENT_CERT_SECRET yourself." >&2
      exit 1
    fi
    echo "removed the bootstrap token and the agent's client certificate from namespace $GM_NAMESPACE" >&2
    ;;
  *) _gm_unknown_step ;;
esac
