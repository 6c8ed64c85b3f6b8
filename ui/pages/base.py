"""``Page``: what the main window knows about a workflow page, and nothing more.

The window talks to its pages only through this class: two signals a page may emit and two
hooks the window calls. A page's own widgets and jobs stay private to it. ``PageSpec`` names a
page and the callable that builds it, so a page module (and pyqtgraph behind it) is imported
only when the window builds that page, right after it first shows.

Example::

    class NotesPage(Page):
        def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
            super().__init__(parent)
            self.state = state

        def on_shown(self) -> None:
            self.refresh()
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from ui.state import AppState

log = logging.getLogger(__name__)


class Page(QWidget):
    """Base of every workflow page (Data, Train, Generate, Export).

    Signals (page → window):
        demo_requested(): the user asked for the demo study; the window writes and opens it.
        scan_finished(str, bool): a folder scan ended (root, success); the window remembers
            successfully opened folders in File → Recent folders.

    Hooks (window → page): ``on_shown()`` when the page becomes the visible one,
    ``shutdown()`` before the window closes.
    """

    demo_requested = Signal()
    scan_finished = Signal(str, bool)

    state: AppState

    def on_shown(self) -> None:
        """The page became visible (the user switched to it). Default: nothing."""

    def shutdown(self) -> bool | None:
        """Cancel this page's background jobs; the window then waits for every worker.

        Pages that wait themselves return whether their jobs stopped in time.
        """
        return True


PageFactory = Callable[[AppState, QWidget], Page]


@dataclass(frozen=True)
class PageSpec:
    """One entry of the workflow: key ("data"), navigation label, and how to build it."""

    key: str
    label: str
    build: PageFactory

    @property
    def name(self) -> str:
        """The label without its step number ("Data")."""
        return self.label.split()[-1]


class UnavailablePage(Page):
    """Stands in for a page that failed to build, so one broken page never takes the window
    down; the reason is in the log panel."""

    def __init__(self, state: AppState, parent: QWidget | None = None, *, name: str = "") -> None:
        super().__init__(parent)
        self.state = state
        label = QLabel(f"The {name} page is not available; see the log panel (Ctrl+L).", self)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.addWidget(label)


def build_page(spec: PageSpec, state: AppState, parent: QWidget) -> Page:
    """Build the page ``spec`` describes, or an ``UnavailablePage`` if that fails."""
    try:
        return spec.build(state, parent)
    except Exception:  # noqa: BLE001 - one broken page must not take the window down
        log.exception("Could not build the %s page", spec.label)
        return UnavailablePage(state, parent, name=spec.name)
