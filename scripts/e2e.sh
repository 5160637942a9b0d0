#!/usr/bin/env bash
# The real-engine suite (tests/e2e): the real pulumi CLI and engine, the real kubernetes provider and Helm, against
# two real kube-apiservers on 127.0.0.1 holding a simulated Gloo management plane and agent. Builds or reuses the
# tools first (scripts/e2e-tools.sh), then runs pytest on tests/e2e. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh

echo "== real tools (scripts/e2e-tools.sh)"
bin=$(bash scripts/e2e-tools.sh)
echo "== pytest tests/e2e (tools from $bin)"
GLOO_E2E_BIN_DIR="$bin" "$VENV/bin/python" -m pytest tests/e2e "$@"
