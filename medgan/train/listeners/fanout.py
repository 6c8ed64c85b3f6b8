"""Call several trainer listeners with each event (a listener that fails does not stop the
others; the trainer logs the first failures)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def fan_out(*listeners: Callable[[Any], Any] | None) -> Callable[[Any], None]:
    """One ``on_event`` callable that forwards each event to every non-None listener in order."""
    chosen = [listener for listener in listeners if listener is not None]

    def on_event(event: Any) -> None:
        failed: BaseException | None = None
        for listener in chosen:
            try:
                listener(event)
            except Exception as exc:  # noqa: BLE001 - the others still get the event
                failed = failed or exc
        if failed is not None:
            raise failed

    return on_event
