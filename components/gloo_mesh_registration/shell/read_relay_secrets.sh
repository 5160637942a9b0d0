# shellcheck shell=sh
# The management relay secrets read (lifecycle.relay_secrets_step): read-relay-secrets. Per secret named in
# $GM_RELAY_SECRETS (`name=key` words, in namespace $GM_NAMESPACE): a line `<name> keys <key>=<base64 length> ...`,
# then `<name> value <base64 of key>` when that key is there, or one line `<name> MISSING`, or `<name> FORBIDDEN <the
# permission refused, as the API server names it>` when RBAC refuses the read. The template prints no other key's
# value, so the CA's private key is never on stdout.
# shellcheck disable=SC2154 # _gm_step, _gm_dir: set by preamble.sh, which comes first in every step's script
case "$_gm_step" in
  read-relay-secrets)
    ;;
  *) _gm_unknown_step ;;
esac
for _gm_pair in $GM_RELAY_SECRETS; do
  _gm_name=${_gm_pair%%=*}
  _gm_key=${_gm_pair#*=}
  _gm_template="go-template={{with .data}}keys {{range \$k, \$v := .}}{{\$k}}={{len \$v}} {{end}}
{{with index . \"$_gm_key\"}}value {{.}}{{end}}{{else}}keys{{end}}"
  if _gm_out=$(k get secret "$_gm_name" -n "$GM_NAMESPACE" -o "$_gm_template" 2>"$_gm_dir/errors"); then
    printf '%s\n' "$_gm_out" | sed "s/^/$_gm_name /"
  elif grep -q 'NotFound' "$_gm_dir/errors"; then
    echo "$_gm_name MISSING"
  elif _gm_refused=$(_gm_forbidden "$_gm_dir/errors"); then
    echo "$_gm_name FORBIDDEN $_gm_refused"
  else
    echo "error: cannot read secret $_gm_name in namespace $GM_NAMESPACE: $(_gm_cause "$_gm_dir/errors")" >&2
    exit 1
  fi
done
