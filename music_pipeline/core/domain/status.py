"""Where a track stands: the statuses live with their transitions in ``lifecycle``.

Kept as an import path only (code written before the lifecycle, and branches merged after
it, import ``Status`` from here); new code imports from ``lifecycle``.
"""

from .lifecycle import Status

__all__ = ["Status"]
