"""Keep third-party loggers from writing identifiers into our logs.

highdicom logs, at INFO, the SOP Instance UIDs of the source images it copies attributes from
while building a SEG; those are identifiers, and the app's log panel shows INFO records.
"""

from __future__ import annotations

import logging

# logger name -> the lowest level let through
IDENTIFYING_THIRD_PARTY_LOGGERS = {"highdicom": logging.WARNING}


def quiet_identifying_loggers() -> None:
    """Raise the third-party loggers that print identifiers to WARNING (never lowers a level)."""
    for name, level in IDENTIFYING_THIRD_PARTY_LOGGERS.items():
        logger = logging.getLogger(name)
        if logger.level < level:
            logger.setLevel(level)
