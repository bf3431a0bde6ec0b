"""A submitting process for the two-submitters test: one folder of files, one Submission.

    python tests/submit_process.py --server URL --cache-dir DIR --root FOLDER \
        [--barrier FILE] [--dry-run] [--jobs N]

Builds a plan from every file under ``--root`` (sorted, so two processes send in the same
order), prints ``ready`` and, with ``--barrier``, waits for that file to exist so two
processes start their submissions at the same moment. Prints the result as one JSON line
(or ``{"error": ...}``) and exits 0 on success, 1 on failure.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from shaman_addon.collect.plan import PackPlan, PlanFile
from shaman_addon.errors import ShamanError
from shaman_addon.submit import Submission, SubmitOptions


def plan_for(root: Path) -> PackPlan:
    files = [
        PlanFile(p, p.relative_to(root).as_posix(), p.stat().st_size, p)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    ]
    blend = next((f for f in files if f.checkout_path.endswith(".blend")), files[0])
    return PackPlan(main_blend=blend.source, project_root=root,
                    blend_checkout_path=blend.checkout_path, files=files)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--cache-dir", type=Path, required=True)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--barrier", type=Path)
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--jobs", type=int, default=4)
    args = parser.parse_args()
    plan = plan_for(args.root)
    options = SubmitOptions(server_url=args.server, cache_dir=args.cache_dir,
                            dry_run=args.dry_run, jobs=args.jobs)
    submission = Submission(plan.main_blend, options, plan=plan)
    print("ready", flush=True)
    if args.barrier is not None:
        gate = threading.Event()
        while not args.barrier.exists():
            gate.wait(0.002)
    try:
        result = submission.run()
    except ShamanError as exc:
        print(json.dumps({"error": str(exc), "error_type": type(exc).__name__}), flush=True)
        return 1
    print(json.dumps(result.to_json()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
