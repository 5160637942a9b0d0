# shellcheck shell=sh
# The start of every step's script (lifecycle.py puts the step's settings before it, then require_kubectl.sh and
# cluster_access.sh after it): strict mode, the verb ($1), a private folder removed on exit, and the exit hook
# _gm_on_exit that a step may define again (a failing hook turns a success into a failure).
set -eu
_gm_step=${1:-}
_gm_dir=$(umask 077 && mktemp -d)
_gm_on_exit() { :; }
_gm_exit() {
  _gm_status=$?
  if ! _gm_on_exit; then
    if [ "$_gm_status" -eq 0 ]; then _gm_status=1; fi
  fi
  rm -rf "$_gm_dir"
  exit "$_gm_status"
}
trap _gm_exit EXIT
trap 'exit 130' INT TERM
# _gm_unknown_step: the last branch of every step's `case "$_gm_step"`.
_gm_unknown_step() {
  echo "error: unknown step '$_gm_step'" >&2
  exit 2
}
