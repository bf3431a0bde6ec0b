"""``python -m shaman_addon deps FILE.blend``: what a submission would send, and where.

Prints the pack plan as a table (or one JSON document with ``--json``) without talking
to any server, so a TD can check a shot before submitting it. Rewritten copies are made
(their sizes are real) and removed before the command ends.
Exit 0 when the plan was made (missing files are listed, not fatal, unless ``--strict``:
then 3), 1 when the .blend cannot be read or a dependency lies in a credential store
(listed as refused, as ``submit`` would refuse it, unless ``--allow-credential-files``),
2 on a usage error (a path that is not a file: the same code as ``submit``). With
``--json`` an error is a JSON document too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..app.exit_codes import EXIT_FAILED, EXIT_MISSING, EXIT_OK, exit_code_for
from ..app.present import (
    LINE_LIMIT,
    LIST_SHOWN,
    PATH_LIMIT,
    FullLists,
    error_json,
    error_line,
    missing_lines,
    more_lines,
    outside_root_note,
    outside_warnings,
    refused_lines,
)
from ..app.settings import command_line_blend
from ..errors import ShamanError
from ..units import format_bytes, format_count, format_files
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
    from .submit import add_allow_argument

    add_allow_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..collect.collector import collect

    def progress(message: str) -> None:
        if args.verbose:
            print(message, file=sys.stderr)

    try:
        blend = command_line_blend(args.blend)
        note = outside_root_note(blend, args.project_root)
        if note:
            print(note, file=sys.stderr)
        plan = collect(blend, project_root=args.project_root, on_progress=progress,
                       allow_credentials=args.allow_credential_files, list_refused=True)
    except ShamanError as exc:
        if not args.json:
            raise  # main says it, once
        sys.stdout.write(json.dumps(error_json(exc), indent=1) + "\n")
        print(error_line(exc), file=sys.stderr)
        return exit_code_for(exc)
    try:
        if args.json:
            sys.stdout.write(json.dumps(plan_json(plan), indent=1, ensure_ascii=False) + "\n")
        else:
            _print_table(plan)
    finally:
        plan.cleanup()
    if plan.refused:
        return EXIT_FAILED
    if args.strict and plan.missing:
        return EXIT_MISSING
    return EXIT_OK


def plan_json(plan: PackPlan) -> dict[str, Any]:
    """The plan's JSON, each rewritten file's ``source`` the file on disk it was made
    from (the rewritten copy is temporary: it is gone when ``deps`` ends)."""
    doc = plan.to_json()
    for entry, f in zip(doc["files"], plan.files, strict=True):
        if f.rewritten:
            entry["source"] = str(f.original)
            entry["rewritten_copy"] = "temporary, removed when deps ended"
    return doc


def _print_table(plan: PackPlan) -> None:
    out = sys.stdout
    out.write(f"main file:    {plan.main_blend}\n")
    out.write(f"project root: {plan.project_root}\n")
    out.write(f"in checkout:  {plan.blend_checkout_path}\n\n")
    out.write(f"{'SIZE':>10}  FLAGS  CHECKOUT PATH  <-  SOURCE\n")
    outside = {o.path for o in plan.outside_project}
    for f in plan.files:
        flags = ("R" if f.rewritten else "-") + ("O" if str(f.original) in outside else "-")
        out.write(f"{format_bytes(f.size):>10}  {flags:5}  {shown(f.checkout_path, PATH_LIMIT)}"
                  f"  <-  {shown(f.original, PATH_LIMIT)}\n")
    out.write("\nFLAGS: R = a rewritten copy is sent, O = outside the project root "
              "(symlinks by their target)\n")
    full = FullLists(json_flag=True)
    if plan.missing:
        out.write("\n" + "".join(f"{line}\n" for line in missing_lines(plan.missing, full)))
    if plan.refused:
        out.write("\n" + "".join(f"{line}\n" for line in refused_lines(plan.refused, full)))
    warnings = [*plan.warnings, *outside_warnings(plan.outside_project, sent=False,
                                                  full=full)]
    if warnings:
        out.write(f"\nWARNINGS ({format_count(len(warnings))}):\n")
        for w in warnings[:LIST_SHOWN]:
            out.write(f"  {shown(w, LINE_LIMIT)}\n")
        out.write("".join(f"  {line}\n" for line in more_lines(len(warnings), full)))
    out.write(
        f"\n{format_files(len(plan.files), plan.total_bytes)}, "
        f"{len(plan.missing)} missing, {len(plan.outside_project)} outside the project\n"
    )
