# shellcheck shell=sh
# The run's one kubectl check (lifecycle.kubectl_check_step): check-kubectl. require_kubectl.sh, before it, checked
# kubectl; this prints the PID of the process that started the step (pulumi-command's provider), which the program
# passes to every later step of the run as GM_KUBECTL_CHECKED_BY.
# shellcheck disable=SC2154 # _gm_step: set by preamble.sh, which comes first in every step's script
case "$_gm_step" in
  check-kubectl)
    echo "$PPID"
    ;;
  *) _gm_unknown_step ;;
esac
