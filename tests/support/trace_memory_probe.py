"""Trace one .blend and report, as JSON on stdout, how much the process's peak resident
memory grew while tracing, and how many paths it found.

Run as its own process so the numbers are the trace's alone::

    python tests/support/trace_memory_probe.py FILE.blend

The modules are imported and a first tiny read is done before the peak is reset
(``/proc/self/clear_refs``), so only the tracing of FILE counts.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from upload_memory_probe import proc_status_kib, reset_peak  # noqa: E402

from shaman_addon.collect.trace import trace_blend  # noqa: E402


def main() -> int:
    import blender_asset_tracer.trace.blocks2assets  # noqa: F401 (imported before the peak)

    blend = Path(sys.argv[1])
    before = proc_status_kib("VmRSS")
    reset = reset_peak()
    start = time.perf_counter()
    refs = len(trace_blend(blend).refs)
    seconds = time.perf_counter() - start
    peak = proc_status_kib("VmHWM")
    json.dump({"refs": refs, "seconds": seconds, "peak_growth_kib": peak - before,
               "peak_kib": peak, "reset": reset}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
