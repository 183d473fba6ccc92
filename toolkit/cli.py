"""The ``journeycast`` command: one subcommand per step of the flow.

Each subcommand is a thin ``_cmd_<name>(args) -> int`` that calls the toolkit
and prints what an analyst needs; errors the user can act on
(``JourneycastError``) are printed as one line and give exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from toolkit.errors import JourneycastError


def _cmd_sample(args: argparse.Namespace) -> int:
    from toolkit.sample import write_sample

    paths = write_sample(args.out, customers=args.customers, seed=args.seed)
    for name, path in paths.items():
        print(f"wrote {path}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="journeycast",
        description="Customer-journey analytics and cash-flow forecasting.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sample", help="generate the deterministic sample shop data")
    p.add_argument("--out", type=Path, default=Path("data/sample"), help="output directory")
    p.add_argument("--customers", type=int, default=9000, help="people entering the journey")
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(func=_cmd_sample)

    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``journeycast`` console script."""
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except JourneycastError as exc:
        print(f"journeycast {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
