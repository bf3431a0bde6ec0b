"""A submitting process for the two-submitters test: one .blend, one Submission.

    python tests/support/submit_process.py --server URL --cache-dir DIR --blend FILE \
        [--barrier FILE] [--dry-run] [--jobs N]

Submits ``--blend`` through the public API (collecting it like the command line does),
printing ``ready`` first and, with ``--barrier``, waiting for that file to exist so two
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

from shaman_addon.errors import ShamanError
from shaman_addon.submit import Submission, SubmitOptions


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--cache-dir", type=Path, required=True)
    parser.add_argument("--blend", type=Path, required=True)
    parser.add_argument("--barrier", type=Path)
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--jobs", type=int, default=4)
    args = parser.parse_args()
    options = SubmitOptions(server_url=args.server, cache_dir=args.cache_dir,
                            dry_run=args.dry_run, jobs=args.jobs)
    submission = Submission(args.blend, options)
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
