"""Shared fixtures: the vendored CRD path and a repository-root import path."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Failure-path tests leave the SDK's derived Output futures holding the expected exception; asyncio reports each
# as "Future exception was never retrieved" when it is collected. The tests assert the exception itself.
logging.getLogger("asyncio").setLevel(logging.CRITICAL)
