"""Keep third-party network loggers from writing identifiers into our logs.

pynetdicom logs C-FIND identifiers (patient names, IDs) at DEBUG, and urllib3 / dicomweb-client
log request URLs, whose QIDO query strings hold the search terms. They are raised to WARNING
before any PACS traffic.
"""

from __future__ import annotations

import logging

NOISY = ("pynetdicom", "urllib3", "dicomweb_client", "requests")


def quiet_network_logs() -> None:
    for name in NOISY:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)
