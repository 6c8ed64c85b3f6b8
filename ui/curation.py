"""Re-export shim, kept for one release: the curation logic moved to
:mod:`medgan.curate.decisions` (``distance_mask``, ``compose_decisions``, ``sort_order``).
Import it from there; this module will be removed.
"""

from __future__ import annotations

from medgan.curate.decisions import (
    UNDECIDED,
    USER_ACCEPT,
    USER_REJECT,
    compose_decisions,
    distance_mask,
    sort_order,
)

__all__ = ["UNDECIDED", "USER_ACCEPT", "USER_REJECT", "compose_decisions", "distance_mask", "sort_order"]
