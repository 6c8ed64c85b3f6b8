"""Keep third-party network loggers from writing identifiers into our logs.

pynetdicom logs C-FIND identifiers (patient names, IDs) at DEBUG, and urllib3 / dicomweb-client
log request URLs, whose QIDO query strings hold the search terms. They are raised to WARNING
before any PACS traffic.
"""

from __future__ import annotations

import logging

NOISY = {
    "pynetdicom": logging.WARNING,
    "urllib3": logging.WARNING,
    "dicomweb_client": logging.WARNING,
    "requests": logging.WARNING,
    "retrying": logging.ERROR,  # logs each failed attempt with a traceback
}


def quiet_network_logs() -> None:
    for name, level in NOISY.items():
        logger = logging.getLogger(name)
        if logger.level < level:
            logger.setLevel(level)
