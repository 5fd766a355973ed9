"""The ``var-emitter`` command line: one module per subcommand, each with ``add_parser`` and ``run``.

User errors (:class:`~napari_var_emitter.errors.VarEmitterError`) print as one line on stderr and exit 2,
warnings as one line each; ``--traceback`` (before the subcommand) shows full tracebacks and Python's
warning format instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence

from .._version import __version__
from ..errors import VarEmitterError

#: subcommand name -> module in this package that defines ``add_parser(subparsers)`` and ``run(args) -> int``
SUBCOMMANDS = ("simulate", "train", "predict", "evaluate", "render", "drift", "group", "filter", "frc")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="var-emitter",
        description="Single-molecule localization with a next-scale (VAR) emitter predictor.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--traceback", action="store_true", help="show full tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"{__name__}.{name}_cmd")
        except ModuleNotFoundError as exc:  # a subcommand not built yet must not break the others
            if exc.name != f"{__name__}.{name}_cmd":
                raise
            continue
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    with warnings.catch_warnings():
        if not args.traceback:
            warnings.showwarning = _one_line_warning(args.command)
        return _run(args)


def _one_line_warning(command: str):
    """A ``warnings.showwarning`` that prints ``var-emitter COMMAND: warning: MESSAGE`` (no source line)."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"var-emitter {command}: warning: {message}", file=file or sys.stderr)

    return show


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args) or 0)
    except VarEmitterError as exc:
        if args.traceback:
            raise
        print(f"var-emitter {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"var-emitter {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
