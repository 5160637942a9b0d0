# shellcheck shell=sh
# The run's one kubectl check (lifecycle.kubectl_check_step): check-kubectl. lifecycle.py puts require_kubectl.sh
# before it in a subshell whose message, if it fails, is in _gm_problem. The step never fails (a failed plain invoke
# would end the program with a traceback): it prints `CHECKED <PID>`, the process that started it (pulumi-command's
# provider, which the program hands every later step of the run as GM_KUBECTL_CHECKED_BY), or `PROBLEM <message>`.
# shellcheck disable=SC2154 # _gm_step: set by preamble.sh, which comes first in every step's script
case "$_gm_step" in
  check-kubectl)
    if [ -n "${_gm_problem:-}" ]; then echo "PROBLEM $_gm_problem"; else echo "CHECKED $PPID"; fi
    ;;
  *) _gm_unknown_step ;;
esac
