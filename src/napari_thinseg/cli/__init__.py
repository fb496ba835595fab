"""The ``thinseg`` command: the plugin's work, headless.

A thin shell over the pipeline modules, a module per command:
:mod:`.autolabel`, :mod:`.colorize`, :mod:`.synth`, :mod:`.train` and
:mod:`.predict` (predict, with evaluate_model and verify_dataset: with
train, keras-segmentation's flags; whole slides and clusters in
:mod:`.slide`), :mod:`.measure` (stats) and :mod:`.rocktype`. Bad input
exits with status 2 and one line on stderr naming the file and the
problem; nothing on disk is replaced without ``--overwrite``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .._version import __version__
from ..errors import OUT_OF_MEMORY, ThinsegError, is_out_of_memory
from . import autolabel, colorize, measure, predict, rocktype, synth, train
from ._common import ThinsegParser


# -- parser ------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = ThinsegParser(
        prog="thinseg",
        description="Segment petrographic thin sections (napari-thinseg).",
    )
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks on errors"
    )
    sub = parser.add_subparsers(
        dest="command", required=True, parser_class=ThinsegParser
    )

    autolabel.add_commands(sub)
    colorize.add_commands(sub)
    synth.add_commands(sub)
    train.add_commands(sub)
    predict.add_commands(sub)
    measure.add_commands(sub)
    rocktype.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ThinsegError as exc:
        if args.debug:
            raise
        print(f"thinseg: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("thinseg: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        if is_out_of_memory(exc):
            print(f"thinseg: error: {OUT_OF_MEMORY}", file=sys.stderr)
            return 2
        print(
            f"thinseg: internal error: {type(exc).__name__}: {exc} "
            "(run with --debug for details)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
