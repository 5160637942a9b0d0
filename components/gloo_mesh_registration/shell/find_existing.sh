# shellcheck shell=sh
# The preview's look for objects it is about to create (lifecycle.existing_objects_step): find-existing-objects.
# Each word of $GM_OBJECTS is `namespace/<name>`, `helm-release/<ns>/<name>` (Helm's release secrets, labelled
# owner=helm), `helm-crds/<ns>/<release>` or `<resource>/<ns>/<name>` of any other namespaced kind, the last
# optionally suffixed `@owned`: such an object counts only if it lacks the label $GM_OWNER_LABEL (`key=value`), the
# stack's own mark; if it carries that key with another value (another stack's mark), `key=<that value>` follows the
# ref. Each object that counts is printed, one per line. A cluster that cannot be asked prints
# `UNREACHABLE <kubectl's reason>` and nothing else; one that refuses a look (RBAC) prints `FORBIDDEN <the permission
# refused, as the API server names it>` and nothing else. Objects in a namespace looked for before them (`namespace/`)
# and not found are not looked for.
# shellcheck disable=SC2154 # _gm_step, _gm_dir: set by preamble.sh, which comes first in every step's script
# _gm_cannot_look: why kubectl failed (its stderr in $_gm_dir/errors), as the one line the step then prints.
_gm_cannot_look() {
  if _gm_refused=$(_gm_forbidden "$_gm_dir/errors"); then
    echo "FORBIDDEN $_gm_refused"
  else
    echo "UNREACHABLE $(_gm_cause "$_gm_dir/errors")"
  fi
}
case "$_gm_step" in
  find-existing-objects)
    ;;
  *) _gm_unknown_step ;;
esac
_gm_absent=
for _gm_ref in $GM_OBJECTS; do
  _gm_object=${_gm_ref%@owned}
  _gm_kind=${_gm_object%%/*}
  _gm_rest=${_gm_object#*/}
  _gm_ns=${_gm_rest%%/*}
  _gm_name=${_gm_rest#*/}
  case "$_gm_kind" in
    helm-crds)
      # CRDs that Helm installed for a release of this name in another namespace: Helm refuses to take them over
      # (its ownership check compares meta.helm.sh/release-namespace). Printed: the ref, then <namespace>/<crd>.
      if ! _gm_owned=$(k get crd -o "jsonpath={range .items[*]}{.metadata.annotations.meta\.helm\.sh/release-name} \
{.metadata.annotations.meta\.helm\.sh/release-namespace} {.metadata.name}{'\n'}{end}" 2>"$_gm_dir/errors"); then
        _gm_cannot_look
        exit 0
      fi
      _gm_found=$(printf '%s\n' "$_gm_owned" | awk -v r="$_gm_name" -v n="$_gm_ns" \
        'NF == 3 && $1 == r && $2 != n { printf " %s/%s", $2, $3 }')
      if [ -n "$_gm_found" ]; then echo "$_gm_ref$_gm_found"; fi
      continue ;;
    namespace) set -- namespace "$_gm_rest" ;;
    helm-release) set -- secrets -n "$_gm_ns" -l "owner=helm,name=$_gm_name" ;;
    *) set -- "$_gm_kind" "$_gm_name" -n "$_gm_ns" ;;
  esac
  # Nothing is in a namespace that does not exist (looked for first): no look, so no permission in it needed.
  case " $_gm_absent " in *" $_gm_ns "*) if [ "$_gm_kind" != namespace ]; then continue; fi ;; esac
  if ! _gm_found=$(k get "$@" --ignore-not-found -o name 2>"$_gm_dir/errors"); then
    _gm_cannot_look
    exit 0
  fi
  if [ "$_gm_kind" = namespace ] && [ -z "$_gm_found" ]; then _gm_absent="$_gm_absent $_gm_rest"; fi
  _gm_mark=
  if [ -n "$_gm_found" ] && [ "$_gm_ref" != "$_gm_object" ] && [ -n "${GM_OWNER_LABEL:-}" ]; then
    # Whose mark it carries: this stack's (a replacement in this preview, not a leftover: nothing printed), another
    # stack's (printed after the ref as `<key>=<value>`), or none.
    _gm_mark=$(k get "$_gm_kind" "$_gm_name" -n "$_gm_ns" \
      -o "go-template={{with .metadata.labels}}{{index . \"${GM_OWNER_LABEL%%=*}\"}}{{end}}" 2>/dev/null) || _gm_mark=
    case "$_gm_mark" in
      "${GM_OWNER_LABEL#*=}") continue ;;
      "" | "<no value>") _gm_mark= ;;
      *) _gm_mark=" ${GM_OWNER_LABEL%%=*}=$_gm_mark" ;;
    esac
  fi
  if [ -n "$_gm_found" ]; then echo "$_gm_ref$_gm_mark"; fi
done
