"""Command line: ``python -m minddim exercises`` and ``python -m minddim grade PATH... [--json]``."""

from __future__ import annotations

import argparse
import json
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minddim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("exercises", help="generate exercises/ from solutions/")
    p.add_argument("--solutions", default="solutions")
    p.add_argument("--out", default="exercises")

    p = sub.add_parser("grade", help="grade submitted exercise notebooks")
    p.add_argument("paths", nargs="+", help="notebooks (.ipynb) to grade")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per cell (default 60)")
    p.add_argument("--solutions", default=None, help="folder of the solution notebooks (default: the repository's)")

    args = parser.parse_args(argv)
    if args.command == "exercises":
        from .exercises import make_exercises

        for path in make_exercises(args.solutions, args.out):
            print(f"wrote {path}")
        return 0
    from .grading import format_report, grade_notebook

    reports = [grade_notebook(p, args.solutions, args.timeout) for p in args.paths]
    print(json.dumps(reports, indent=2) if args.json else format_report(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
