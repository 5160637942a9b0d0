"""What every test shares: quiet asyncio reports (the repository root is on the import path by pyproject.toml's
``pythonpath``; the component and the lab are installed)."""

from __future__ import annotations

import logging

# Failure-path tests leave the SDK's derived Output futures holding the expected exception; asyncio reports each
# as "Future exception was never retrieved" when it is collected. The tests assert the exception itself.
logging.getLogger("asyncio").setLevel(logging.CRITICAL)
