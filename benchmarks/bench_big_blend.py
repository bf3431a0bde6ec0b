"""Memory of reading and rewriting a large .blend (issue 13, item 3).

    .venv/bin/python benchmarks/bench_big_blend.py [--grid N] [--repo DIR] [--cache DIR]

Builds (once, cached like the benchmark's productions) a real .blend of a few hundred MB
uncompressed whose image path must be rewritten (``big_blend.py``), then measures, each
in a process of its own, the peak resident memory (``ru_maxrss``) and time of:

- *rewrite*: tracing the file and writing its patched copy (``write_rewritten``);
- *deps*: ``python -m shaman_addon deps FILE --json`` (collect, rewrite included);
- *submit*: ``python -m shaman_addon submit FILE`` to a fresh local server.

``--repo`` measures another checkout of the code (the "before" numbers come from the
commit before streaming). Prints a Markdown table row per case and appends the table to
``benchmarks/RESULTS-big-blend.md``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import big_blend  # noqa: E402
from bench_server import Server  # noqa: E402

REWRITE = """
import sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from shaman_addon.collect.rewrite import Patch, write_rewritten
from shaman_addon.collect.trace import trace_blend
src = Path({src!r})
trace = trace_blend(src)
patches = [Patch(r.slot, r.path, "//tex/a.png", r.referrer) for r in trace.refs if r.slot]
assert patches, "the scene's image path must be rewritten"
write_rewritten(src, trace.compression, patches, Path({dest!r}))
"""


def measure(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB, exit code) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    assert proc.stderr is not None
    err = proc.stderr.read().decode(errors="replace")
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        print(f"{cmd[2:5]} failed ({proc.returncode}): {err[-2000:]}", file=sys.stderr)
    return seconds, usage.ru_maxrss / 1024, proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--grid", type=int, default=big_blend.DEFAULT_GRID)
    parser.add_argument("--repo", type=Path, default=HERE.parent)
    parser.add_argument("--cache", type=Path, default=HERE.parent / ".bench-cache")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    blend = big_blend.build(args.cache, args.grid)
    repo = args.repo.resolve()
    from shaman_addon.collect import blend_limits

    size = sum(len(c) for c in blend_limits.read_chunks(blend, "zstd"))
    label = args.label or repo.name
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / "xdg")}
        env.pop("SHAMAN_SERVER_URL", None)
        code = REWRITE.format(repo=str(repo), src=str(blend), dest=str(Path(tmp) / "c.blend"))
        rows.append(("rewrite", *measure([sys.executable, "-c", code], repo, env)))
        rows.append(("deps", *measure([sys.executable, "-m", "shaman_addon", "deps",
                                       str(blend), "--json"], repo, env)))
        with Server(store_parent=Path(tmp)) as server:
            server.fresh()
            rows.append(("submit", *measure([sys.executable, "-m", "shaman_addon", "submit",
                                             str(blend), "--server", server.url], repo, env)))
    lines = [f"| {label} | {case} | {size / 1e6:,.0f} MB ({blend.stat().st_size / 1e6:,.0f} "
             f"MB zstd) | {secs:.1f} s | {rss:,.0f} MB | {'ok' if rc == 0 else f'exit {rc}'} |"
             for case, secs, rss, rc in rows]
    print("\n".join(lines))
    out = HERE / "RESULTS-big-blend.md"
    if not out.exists():
        out.write_text("# Memory of a large .blend (issue 13, item 3)\n\n"
                       "| code | case | .blend uncompressed | time | peak RSS | result |\n"
                       "|---|---|---|---|---|---|\n")
    with out.open("a") as f:
        f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
