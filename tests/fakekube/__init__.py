"""Fake Kubernetes API server (a test double) for running the real kubectl in tests.

See :mod:`fakekube.server` for what is emulated and what is not.
"""

from .server import DEFAULT_NAMESPACES, FakeKubeApiServer, RecordedRequest
from .store import ApiError

__all__ = ["DEFAULT_NAMESPACES", "ApiError", "FakeKubeApiServer", "RecordedRequest"]
