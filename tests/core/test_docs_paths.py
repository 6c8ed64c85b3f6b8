"""docs/architecture.md names only modules, files and folders that exist."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "architecture.md"

_PATH = re.compile(r"(?<![\w./-])((?:medgan|ui|tests|scripts|benchmarks)/[\w/.-]*)")
_DOTTED = re.compile(r"(?<![\w./-])((?:medgan|ui)(?:\.\w+)+)")


def _module_file(parts: list[str]) -> Path | None:
    base = REPO.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _dotted_problem(name: str) -> str | None:
    """None when ``name`` is a module, or a module followed by a name it defines."""
    parts = name.split(".")
    for cut in range(len(parts), 1, -1):
        module = _module_file(parts[:cut])
        if module is None:
            continue
        rest = parts[cut:]
        if rest and not re.search(rf"\b{re.escape(rest[0])}\b", module.read_text("utf-8")):
            return f"{'.'.join(parts[:cut])} has no {rest[0]!r}"
        return None
    return "no such module"


def test_every_path_and_module_in_the_architecture_doc_exists() -> None:
    text = DOC.read_text("utf-8")
    paths = {m.rstrip(".,:;)") for m in _PATH.findall(text)}
    dotted = {m.rstrip(".") for m in _DOTTED.findall(text)}
    assert paths and dotted, "the doc names no modules at all?"
    missing = sorted(p for p in paths if not (REPO / p).exists())
    wrong = sorted(f"{d}: {why}" for d in dotted if (why := _dotted_problem(d)) is not None)
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"
    assert not wrong, f"docs/architecture.md names modules that do not exist: {wrong}"
