# shellcheck shell=sh
# Only in the token step, whose Command keeps the environment recorded at registration (it ignores later changes):
# stacks registered before the program told the steps which it is recorded one variable, GM_KUBECONFIG, holding a
# path or contents. It is read with the program's rule (ClusterAccess, args.py: contents have a line break, or start
# with "{" or "apiVersion" after leading blanks; anything else is a path), so that such a stack's destroy reaches its
# cluster and no error names contents. New stacks never set it; remove this once no such stack is left.
# shellcheck disable=SC2034 # GM_KUBECONFIG_*: read by cluster_access.sh, which comes next
if [ -n "${GM_KUBECONFIG:-}" ]; then
  _gm_lead=${GM_KUBECONFIG%%[![:space:]]*}
  case "$GM_KUBECONFIG" in
    *'
'*|"$_gm_lead"'{'*|"$_gm_lead"apiVersion*) GM_KUBECONFIG_CONTENTS=$GM_KUBECONFIG ;;
    *) GM_KUBECONFIG_FILE=$GM_KUBECONFIG ;;
  esac
  unset GM_KUBECONFIG
fi
