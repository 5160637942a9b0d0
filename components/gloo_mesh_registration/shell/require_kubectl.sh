# shellcheck shell=sh
# kubectl ($KUBECTL, default: the one on PATH) is there and new enough: the one check of it. Part of every step's
# script, and run on its own by scripts/up.sh before `pulumi up` (sh components/gloo_mesh_registration/shell/...).
# Exits 127 with the fix when it fails. The version costs a kubectl run (about 55 ms of CPU), so a program run checks
# it once (kubectl_check.sh) and hands later steps GM_KUBECTL_CHECKED_BY, the PID of the process that ran that check
# (pulumi-command): a step started by that same process skips the version; any other (a destroy's delete) checks.
KUBECTL="${KUBECTL:-kubectl}"
# The oldest kubectl the steps are tested with (and within the version skew of current clusters): 1.31.
_gm_min_minor=31
if ! command -v "$KUBECTL" >/dev/null 2>&1; then
  echo "error: kubectl is not on PATH; the registration's shell steps need kubectl 1.$_gm_min_minor or newer" >&2
  exit 127
fi
if [ "${GM_KUBECTL_CHECKED_BY:-}" != "$PPID" ]; then
  _gm_version=$("$KUBECTL" version --client -o json 2>/dev/null | sed -n 's/.*"gitVersion": *"v\([0-9]*\)\.\([0-9]*\).*/\1 \2/p' | head -n 1)
  # shellcheck disable=SC2086 # split on purpose: "1 31" into $1 and $2 (the step's verb was read before)
  set -- $_gm_version
  if [ "$#" -ne 2 ] || [ "$1" -lt 1 ] || { [ "$1" -eq 1 ] && [ "$2" -lt "$_gm_min_minor" ]; }; then
    echo "error: kubectl 1.$_gm_min_minor or newer is required (found: ${_gm_version:-unknown}); install a newer kubectl" >&2
    exit 127
  fi
fi
