"""``python -m shaman_addon deps FILE.blend``: what a submission would send, and where.

Prints the pack plan as a table (or one JSON document with ``--json``) without talking
to any server, so a TD can check a shot before submitting it. Rewritten copies are made
(their sizes are real) and removed before the command ends.
Exit 0 when the plan was made (missing files are listed, not fatal, unless ``--strict``:
then 3), 1 when the .blend cannot be read, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..app.exit_codes import EXIT_MISSING, EXIT_OK
from ..app.present import LINE_LIMIT, PATH_LIMIT, missing_lines
from ..units import format_bytes, format_files
from ..untrusted import shown

if TYPE_CHECKING:
    from ..collect.plan import PackPlan


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "deps",
        help="list the files a .blend depends on and where each lands in the checkout",
        description="Trace FILE.blend and every library it links, and print each file a "
        "submission would send with its path in the checkout, the files that are missing "
        "(with what references them), and warnings. Nothing is sent anywhere.",
    )
    p.add_argument("blend", type=Path, metavar="FILE.blend", help="the main .blend file")
    p.add_argument(
        "--project-root",
        type=Path,
        metavar="DIR",
        help="the folder the checkout mirrors (default: the nearest folder above the "
        ".blend holding .blender_project, .git or .svn, else the .blend's own folder)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    p.add_argument("--strict", action="store_true", help="exit 3 when any dependency is missing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..collect.collector import collect

    def progress(message: str) -> None:
        if args.verbose:
            print(message, file=sys.stderr)

    plan = collect(args.blend, project_root=args.project_root, on_progress=progress)
    try:
        if args.json:
            sys.stdout.write(json.dumps(plan.to_json(), indent=1, ensure_ascii=False) + "\n")
        else:
            _print_table(plan)
    finally:
        plan.cleanup()
    if args.strict and plan.missing:
        return EXIT_MISSING
    return EXIT_OK


def _print_table(plan: PackPlan) -> None:
    out = sys.stdout
    out.write(f"main file:    {plan.main_blend}\n")
    out.write(f"project root: {plan.project_root}\n")
    out.write(f"in checkout:  {plan.blend_checkout_path}\n\n")
    out.write(f"{'SIZE':>10}  FLAGS  CHECKOUT PATH  <-  SOURCE\n")
    for f in plan.files:
        flags = ("R" if f.rewritten else "-") + (
            "O" if f.checkout_path.startswith("_outside_project/") else "-"
        )
        out.write(f"{format_bytes(f.size):>10}  {flags:5}  {shown(f.checkout_path, PATH_LIMIT)}"
                  f"  <-  {shown(f.original, PATH_LIMIT)}\n")
    out.write("\nFLAGS: R = a rewritten copy is sent, O = outside the project root\n")
    if plan.missing:
        out.write("\n" + "".join(f"{line}\n" for line in missing_lines(plan.missing)))
    if plan.warnings:
        out.write(f"\nWARNINGS ({len(plan.warnings)}):\n")
        for w in plan.warnings:
            out.write(f"  {shown(w, LINE_LIMIT)}\n")
    out.write(
        f"\n{format_files(len(plan.files), plan.total_bytes)}, "
        f"{len(plan.missing)} missing, {len(plan.outside_project)} outside the project\n"
    )
