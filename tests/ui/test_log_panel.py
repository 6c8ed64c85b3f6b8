"""The log panel adds a burst of records in one edit, in order, filtered by level."""

from __future__ import annotations

import logging

from ui.widgets.log_panel import FLUSH_INTERVAL_MS, LogPanel, QtLogHandler


def test_a_burst_of_records_lands_in_one_flush_in_order(qtbot) -> None:
    panel = LogPanel()
    qtbot.addWidget(panel)
    panel.show()
    lines = [f"record {i}" for i in range(300)]
    for line in lines:
        panel.append_record(logging.INFO, line)
    assert panel.view.blockCount() == 1 and panel.view.toPlainText() == ""  # nothing drawn yet
    qtbot.waitUntil(lambda: panel.view.blockCount() == len(lines), timeout=20 * FLUSH_INTERVAL_MS)
    assert panel.view.toPlainText().splitlines() == lines
    bar = panel.view.verticalScrollBar()
    assert bar.value() == bar.maximum()  # scrolled to the newest record


def test_records_below_the_level_are_kept_but_not_shown_and_clear_drops_pending(qtbot) -> None:
    panel = LogPanel()
    qtbot.addWidget(panel)
    handler = QtLogHandler(logging.DEBUG)
    panel.attach(handler)
    logger = logging.getLogger("medgan.test_log_panel")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.debug("quiet detail")
        logger.warning("loud warning")
    finally:
        logger.removeHandler(handler)
    assert [level for level, _ in panel.records] == [logging.DEBUG, logging.WARNING]
    text = panel.text()  # flushes what is pending
    assert "loud warning" in text and "quiet detail" not in text
    panel.append_record(logging.ERROR, "pending error")
    panel.clear()
    assert panel.text() == ""
