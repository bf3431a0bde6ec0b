"""What a newcomer met on the command line (issue 13 item 10), each as they ran it: real
processes, real .blend files, the local server over loopback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import blendgen

REPO = Path(__file__).resolve().parents[2]
SAFETY_S = 300


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SHAMAN_SERVER_URL"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    env["PYTHONPATH"] = str(REPO)  # so the command runs from any folder
    env.update(extra)
    return env


def cli(*args: str, env: dict[str, str], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shaman_addon", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=SAFETY_S)


def test_dry_run_json_counts_nothing_as_uploaded(
    shaman_server: Any, one_library_production: blendgen.ProductionInfo, tmp_path: Path
) -> None:
    out = cli("submit", str(one_library_production.main_blend), "--server", shaman_server.url,
              "--dry-run", "--json", "--checkout-path", f"dry-{tmp_path.name}",
              env=_env(tmp_path))
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["dry_run"] and doc["files_uploaded"] == 0 and doc["bytes_uploaded"] == 0
    assert doc["files_to_upload"] == len(doc["to_upload"])
    assert doc["files_total"] == (doc["files_to_upload"] + doc["files_already_stored"]
                                  + doc["files_same_content"])


def test_a_path_that_is_not_a_file_is_json_and_exit_2_for_deps_and_submit(
    tmp_path: Path, fault_row: Any
) -> None:
    gone = tmp_path / "no such shot.blend"
    env = _env(tmp_path, SHAMAN_SERVER_URL="http://127.0.0.1:9")
    seen = {}
    for command in ("deps", "submit"):
        plain = cli(command, str(gone), env=env)
        assert plain.returncode == 2, (command, plain.stderr)
        assert plain.stderr.count(str(gone)) == 1 and "Traceback" not in plain.stderr
        out = cli(command, str(gone), "--json", env=env)
        assert out.returncode == 2, (command, out.stderr)
        doc = json.loads(out.stdout)
        assert doc["exit_code"] == 2 and doc["error_type"] == "ConfigError"
        assert str(gone) in doc["error"]
        seen[command] = doc["error"]
    fault_row("deps and submit --json given a path that is not a file", area="bad input",
              saw=seen["deps"], end_state="both print a JSON error document, both exit 2")


def test_fail_on_missing_json_lists_each_missing_file(shaman_server: Any,
                                                      tmp_path: Path) -> None:
    info = blendgen.generate(tmp_path / "prod", libraries=1, files=0, kinds="basic")
    gone = info.kinds["library texture"][0]
    gone.unlink()
    out = cli("submit", str(info.main_blend), "--server", shaman_server.url,
              "--fail-on-missing", "--json", env=_env(tmp_path))
    assert out.returncode == 3, out.stderr
    doc = json.loads(out.stdout)
    assert [Path(m["path"]).name for m in doc["missing"]] == [gone.name]
    assert all(m["referenced_by"] for m in doc["missing"])
    assert doc["error"].startswith("1 dependency of ") and " is missing (" in doc["error"]
    assert "dependencies" not in doc["error"].split("(")[0]  # not "1 dependencies"


def test_log_progress_has_no_empty_upload_line_and_a_failure_is_said_once(
    shaman_server: Any, one_library_production: blendgen.ProductionInfo, tmp_path: Path
) -> None:
    env = _env(tmp_path)
    blend = str(one_library_production.main_blend)
    first = cli("submit", blend, "--server", shaman_server.url, env=env)
    again = cli("submit", blend, "--server", shaman_server.url, env=env)  # nothing to upload
    assert first.returncode == again.returncode == 0, again.stderr
    assert not re.search(r"Uploading 0/0 files", first.stderr + again.stderr)
    bad = cli("submit", blend, "--server", shaman_server.url, "--jobs", "0", env=env)
    errors = [ln for ln in bad.stderr.splitlines() if "--jobs" in ln]
    assert bad.returncode == 2 and len(errors) == 1, bad.stderr


@pytest.mark.local_server_only
def test_a_server_dying_mid_upload_is_one_sentence_that_says_uploads_are_kept(
    shaman_server: Any, one_library_production: blendgen.ProductionInfo, tmp_path: Path,
    fault_row: Any,
) -> None:
    shaman_server.faults.hang_next("upload", count=10_000)
    # The command as typed, with no waits between retries (what is tested is what it
    # says once they run out, not how long it waits)
    no_waits = ("import runpy, sys; import shaman_addon.shaman.retry as r; "
                "r.MAX_BACKOFF_S = 0.0; sys.argv[0] = 'shaman_addon'; "
                "runpy.run_module('shaman_addon', run_name='__main__')")
    proc = subprocess.Popen(
        [sys.executable, "-c", no_waits, "submit", str(one_library_production.main_blend),
         "--server", shaman_server.url, "--no-pipelining"],
        cwd=REPO, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    lines: list[str] = []
    for line in proc.stderr:  # the upload has started (and hangs) when this line comes
        lines.append(line)
        if "Uploading " in line:
            break
    for _ in range(SAFETY_S * 100):  # a guard: the first upload request has arrived
        if shaman_server.counters.requests.get("upload", 0) >= 1:
            break
        time.sleep(0.01)
    dying = threading.Thread(target=shaman_server.stop)  # the server dies mid-upload
    dying.start()
    _out, err = proc.communicate(timeout=SAFETY_S)
    dying.join(timeout=SAFETY_S)
    stderr = "".join(lines) + err
    assert proc.returncode == 1, stderr
    assert "WARNING" not in stderr and "Traceback" not in stderr
    final = [ln for ln in stderr.splitlines() if ln.startswith("error: ")]
    assert len(final) == 1, stderr
    sentence = final[0].removeprefix("error: ")
    assert stderr.count(sentence) == 1, stderr  # not again as a progress line
    assert stderr.rstrip().endswith(
        "Files uploaded before the failure stay on the server: submitting again sends only "
        "what it still lacks.")
    fault_row("server dies in the middle of the upload", saw=sentence,
              end_state="one error line, no WARNING lines, then a line saying the uploaded "
                        "files stay on the server; exit 1",
              measured={"stderr_lines": len(stderr.splitlines())})


def test_a_url_missing_its_colon_suggests_the_url_meant(tmp_path: Path) -> None:
    out = cli("check", "--server", "http//127.0.0.1:8080", env=_env(tmp_path))
    assert out.returncode == 2
    assert "did you mean 'http://127.0.0.1:8080'" in out.stderr, out.stderr
    assert "http://http//" not in out.stderr


def test_a_sanitised_checkout_path_and_a_root_without_the_blend_are_announced(
    shaman_server: Any, one_library_production: blendgen.ProductionInfo, tmp_path: Path,
    fault_row: Any,
) -> None:
    env = _env(tmp_path)
    blend = str(one_library_production.main_blend)
    name = f"etc-{tmp_path.name}"
    out = cli("submit", blend, "--server", shaman_server.url, "--checkout-path",
              f"../../{name}", "--json", env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["checkout_path"].startswith(name)
    assert f"the checkout path '../../{name}' from --checkout-path became '{name}'" in out.stderr
    empty = cli("submit", blend, "--server", shaman_server.url, "--checkout-path", "",
                "--dry-run", env=env)
    assert "note: the checkout path '' from --checkout-path became 'main-" in empty.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for command in ("deps", "submit"):
        extra = ["--server", shaman_server.url, "--dry-run"] if command == "submit" else []
        run = cli(command, blend, "--project-root", str(elsewhere), *extra, env=env)
        assert run.returncode == 0, run.stderr
        assert (f"warning: {blend} is not inside the project root {elsewhere}; it and every "
                "file outside that root go under _outside_project/") in run.stderr
    fault_row("--checkout-path '../../NAME' and a --project-root without the .blend",
              area="bad input", saw=out.stderr.splitlines()[0],
              end_state="the checkout is NAME..., the change and the root are announced")


def test_deps_json_names_the_file_on_disk_as_a_rewritten_files_source(
    one_library_production: blendgen.ProductionInfo, tmp_path: Path
) -> None:
    out = cli("deps", str(one_library_production.main_blend), "--json", env=_env(tmp_path))
    assert out.returncode == 0, out.stderr
    rewritten = [f for f in json.loads(out.stdout)["files"] if f["rewritten"]]
    assert rewritten  # the production's main file references outside files: rewritten
    for f in rewritten:
        assert f["source"] == f["original"] and Path(f["source"]).is_file()
        assert f["rewritten_copy"] == "temporary, removed when deps ended"


def test_history_keeps_the_absolute_path_and_v_works_after_the_subcommand(
    shaman_server: Any, one_library_production: blendgen.ProductionInfo, tmp_path: Path
) -> None:
    blend = one_library_production.main_blend
    env = _env(tmp_path)
    out = cli("submit", blend.name, "--server", shaman_server.url, "--dry-run", "-v",
              env=env, cwd=blend.parent)
    assert out.returncode == 0, out.stderr
    assert "DEBUG " in out.stderr  # -v after the subcommand is taken
    history = tmp_path / "xdg" / "shaman-submitter" / "history.jsonl"
    assert json.loads(history.read_text().splitlines()[-1])["blend"] == str(blend)
    deps = cli("deps", blend.name, "-v", env=env, cwd=blend.parent)
    assert deps.returncode == 0 and "DEBUG " in deps.stderr, deps.stderr
    quiet = cli("-v", "deps", blend.name, env=env, cwd=blend.parent)  # before it too
    assert quiet.returncode == 0 and "DEBUG " in quiet.stderr


def test_every_document_the_sources_cite_is_in_the_repository() -> None:
    cited: dict[str, str] = {}
    roots = [REPO / "shaman_addon", REPO / "tests", REPO / "scripts", REPO / "benchmarks"]
    texts = [p for root in roots for p in root.rglob("*") if p.suffix in (".py", ".sh", ".md")]
    texts += [REPO / n for n in ("README.md", "ARCHITECTURE.md", "HOW-IT-WORKS.md")]
    for path in texts:
        for name in re.findall(r"[\w./-]*[A-Z][\w-]*\.md\b", path.read_text("utf-8")):
            cited.setdefault(Path(name).name, str(path.relative_to(REPO)))
    present = {p.name for p in REPO.rglob("*.md") if ".venv" not in p.parts}
    assert cited, "no citations found"
    assert {n: src for n, src in cited.items() if n not in present} == {}


def test_the_summary_adds_up_when_two_files_have_the_same_content(
    shaman_server: Any, tmp_path: Path
) -> None:
    info = blendgen.generate(tmp_path / "prod", libraries=1, files=3, total_bytes=30_000,
                             kinds="basic")
    bulk = sorted(p for p in info.expected_files
                  if p.suffix != ".blend" and p.stat().st_size > 0)
    content = os.urandom(bulk[0].stat().st_size)  # new to any store, however full
    bulk[0].write_bytes(content)
    bulk[1].write_bytes(content)  # the same content under another name
    out = cli("submit", str(info.main_blend), "--server", shaman_server.url,
              "--checkout-path", f"dup-{tmp_path.name}", env=_env(tmp_path))
    assert out.returncode == 0, out.stderr
    summary = next(ln for ln in out.stdout.splitlines() if ln.startswith("In the checkout: "))
    total, uploaded, stored = (int(n) for n in re.findall(r"(\d+) files?,", summary)[:3])
    assert summary.endswith("; 1 file has the same content as another (sent once)."), summary
    assert total == uploaded + stored + 1, summary
