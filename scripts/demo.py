"""The README's main job, end to end on a built-in default (no Flamenco install needed).

1. start the local Shaman server (tests/support/shaman_server.py) on a free loopback port;
2. build a small demo production with real Blender (textures, a UDIM set, an image
   sequence, a linked library with its own texture, a file outside the project);
3. submit it with ``python -m shaman_addon submit --job-type simple-blender-render``:
   the files go to Shaman, then the render job for the checkout goes to the Manager;
4. print the checkout path, the job's page and the settings the Manager received, and a
   short tree of the checkout on the server's disk;
5. open the checkout's .blend with Blender and check nothing is missing;
6. submit again and show that nothing was uploaded the second time.

Everything lands in ``.demo/`` (wiped at each run) so it can be looked at afterwards.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / ".demo"
PY = sys.executable

def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def start_server(storage: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [PY, str(REPO / "tests" / "support" / "shaman_server.py"), "--host", "127.0.0.1",
         "--port", "0",
         "--storage", str(storage)],
        stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("listening on "):
        proc.kill()
        raise SystemExit(f"the local Shaman server did not start: {line!r}")
    return proc, line.removeprefix("listening on ")


def submit(blend: Path, url: str, cache: Path, *job: str) -> dict:
    out = subprocess.run(
        [PY, "-m", "shaman_addon", "submit", str(blend), "--server", url, "--json",
         "--cache-dir", str(cache), *job],
        cwd=REPO, stdout=subprocess.PIPE, text=True, check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"submit failed with exit code {out.returncode}")
    return json.loads(out.stdout)


def fetch_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as answer:  # the local server only
        return json.loads(answer.read(1 << 20))


def check_checkout(checkout: Path, blend: Path) -> dict:
    """What Blender itself reports for the checkout: missing data-blocks, and paths that
    do not resolve to a file inside the checkout (Blender's own bundled files aside)."""
    import blend_tools

    truth = blend_tools.run_tool("groundtruth", blend, DEMO)
    spec = importlib.util.find_spec("bpy")  # Blender's own files sit in the bpy package
    assert spec is not None and spec.submodule_search_locations
    bundled = Path(spec.submodule_search_locations[0])
    missing_ids = [i for rep in truth["files"].values() for i in rep["missing_ids"]]
    bad = [
        p for p in truth["all_paths"]
        if p not in ("", ".") and not Path(p).is_relative_to(bundled)
        and not (Path(p).is_relative_to(checkout) and os.path.exists(p))
    ]
    return {"paths": len(truth["all_paths"]), "missing_ids": missing_ids, "bad_paths": bad}


def print_tree(root: Path, limit: int = 25) -> None:
    entries = sorted(p for p in root.rglob("*") if not p.is_dir())
    for path in entries[:limit]:
        rel = path.relative_to(root)
        print(f"  {rel}  ->  {os.readlink(path) if path.is_symlink() else '(file)'}")
    if len(entries) > limit:
        print(f"  ... and {len(entries) - limit} more")


def main() -> int:
    # the test helpers: generator, Blender tools
    sys.path.insert(0, str(REPO / "tests" / "support"))
    shutil.rmtree(DEMO, ignore_errors=True)
    DEMO.mkdir()
    storage, cache = DEMO / "shaman-storage", DEMO / "cache"

    step("Starting the local Shaman server")
    server, url = start_server(storage)
    try:
        print(f"  {url}  (storage: {storage})")

        step("Building a demo production with Blender")
        import blendgen

        production = blendgen.generate(DEMO / "production", libraries=2, files=12, kinds="all")
        blend = Path(production.main_blend)
        print(f"  main file: {blend}")

        step("Submitting with a render job (cold: empty server, empty cache)")
        render = DEMO / "render"
        first = submit(blend, url, cache, "--job-type", "simple-blender-render",
                       "--set", f"render_output_root={render}")
        print(f"  checkout path (from the server): {first['checkout_path']}")
        job = first["job"]
        print(f"  render job: {job['name']!r}, {job['status']}, id {job['id']}")
        print(f"  its page: {job['url']}")
        received = fetch_json(f"{url}/api/v3/jobs/{job['id']}")["settings"]
        for key in sorted(received):
            print(f"    {key} = {received[key]!r}")
        print(f"  the workers open: {first['worker_blend_path']}")
        print(f"  files: {first['files_total']}, uploaded {first['files_uploaded']} "
              f"({first['bytes_uploaded']:,} bytes), already stored "
              f"{first['files_already_stored']}")
        for miss in first.get("missing", []):
            print(f"  MISSING: {miss['path']} (used by {', '.join(miss['referenced_by'])})")

        checkout = storage / "jobs" / first["checkout_path"]
        step(f"The checkout on the server's disk: {checkout}")
        print_tree(checkout)

        step("Opening the checkout's .blend (and its libraries) with Blender")
        report = check_checkout(checkout, checkout / first["blend_checkout_path"])
        print(f"  {report['paths']} paths reported by Blender; missing data-blocks: "
              f"{len(report['missing_ids'])}; missing or outside the checkout: "
              f"{len(report['bad_paths'])}")
        ok = not (report["missing_ids"] or report["bad_paths"])
        if not ok:
            print(f"  PROBLEM: {report}")

        step("Submitting again (unchanged)")
        second = submit(blend, url, cache)
        print(f"  checkout path: {second['checkout_path']}")
        print(f"  uploaded {second['files_uploaded']} files ({second['bytes_uploaded']:,} bytes);"
              f" already on the server: {second['files_already_stored']} files")
        if second["bytes_uploaded"] != 0:
            print("  PROBLEM: the unchanged resubmission uploaded bytes")
            ok = False
        step("Done" if ok else "Done, with problems (see above)")
        return 0 if ok else 1
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
