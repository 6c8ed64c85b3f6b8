"""The ``medgan`` command line. Each subcommand lives in its own module in this package.

A subcommand module defines ``register(subparsers) -> None``, which adds one parser and sets
``func=handler`` on it; ``handler(args) -> int`` returns the exit status. Modules are discovered
automatically, so adding a command never touches this file.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence

from medgan import __version__
from medgan.core.errors import Cancelled, MedganError

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medgan",
        description="MedGAN Studio: train GANs on DICOM slices and export synthetic image sets.",
    )
    parser.add_argument("--version", action="version", version=f"medgan {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except Cancelled as exc:
        print(f"medgan: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("medgan: interrupted", file=sys.stderr)
        return 130
    except MedganError as exc:
        print(f"medgan: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
