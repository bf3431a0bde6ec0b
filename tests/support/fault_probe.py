"""Submit one .blend through the whole pipeline (collect included) in a process of its
own, and report time and peak memory growth as one JSON line on stdout::

    .venv/bin/python tests/support/fault_probe.py --server URL --blend FILE --cache-dir DIR \
        [--client-settings JSON]

The big bad-input cases (a 5 GiB sparse file, 20,000 small files) run here so the
numbers are the submission's alone: ``VmHWM`` is reset (``/proc/self/clear_refs``) after
the imports, and the growth is the new peak minus the resident size at that moment.
``--client-settings`` holds the ``ClientSettings`` fields the fault table chose (its
``opts`` fixture). Never imports bpy.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import blender_asset_tracer.blendfile  # noqa: E402, F401  (imports not counted)
import requests  # noqa: E402, F401

from shaman_addon import collect as _collect  # noqa: E402, F401
from shaman_addon.errors import ShamanError  # noqa: E402
from shaman_addon.shaman.client import ClientSettings  # noqa: E402
from shaman_addon.submit import Submission, SubmitOptions  # noqa: E402


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True)
    parser.add_argument("--blend", type=Path, required=True)
    parser.add_argument("--cache-dir", type=Path, required=True)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--client-settings", type=json.loads, default={},
                        help="ClientSettings fields, as a JSON object")
    args = parser.parse_args()
    settings = ClientSettings(**args.client_settings)
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM starts again from VmRSS
    rss_before = status_kib("VmRSS")
    start = time.monotonic()
    out: dict[str, object] = {}
    try:
        result = Submission(args.blend, SubmitOptions(
            server_url=args.server, cache_dir=args.cache_dir, jobs=args.jobs,
            client_settings=settings)).run()
        doc = result.to_json()
        doc.pop("to_upload", None)
        out["result"] = doc
    except ShamanError as exc:
        out["error"] = str(exc)
    out["seconds"] = round(time.monotonic() - start, 2)
    out["rss_before_kib"] = rss_before
    out["hwm_kib"] = status_kib("VmHWM")
    out["growth_kib"] = out["hwm_kib"] - rss_before  # type: ignore[operator]
    print(json.dumps(out), flush=True)
    return 0 if "result" in out else 1


if __name__ == "__main__":
    sys.exit(main())
