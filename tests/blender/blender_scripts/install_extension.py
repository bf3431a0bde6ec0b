"""Install the BUILT extension zip and use it, in a Python where BAT is not importable.

    python install_extension.py ZIP BLEND SERVER_URL

Before anything else, an import guard refuses ``blender_asset_tracer`` unless it comes
from the wheel Blender unpacked for the extension (``<user>/extensions/.local/...``):
the venv's own copy is invisible, so the extension has to work with only what its zip
brings. Then: install with ``package_install_files(enable_on_install=True)``, open the
file, ``bpy.ops.shaman.submit()``, disable, uninstall; prints ``RESULT {json}``.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
from pathlib import Path

USER = Path(os.environ["BLENDER_USER_RESOURCES"]).resolve()
ALLOWED = str(USER / "extensions" / ".local")
GUARDED = "blender_asset_tracer"


class OnlyTheExtensionsWheel(importlib.abc.MetaPathFinder):
    """Finds BAT only on sys.path entries inside the extension's wheel folder."""

    refused = 0

    def find_spec(self, name, path=None, target=None):  # type: ignore[no-untyped-def]
        if name != GUARDED and not name.startswith(GUARDED + "."):
            return None
        if name == GUARDED:
            allowed = [p for p in sys.path if str(Path(p).resolve()).startswith(ALLOWED)]
            spec = importlib.machinery.PathFinder.find_spec(name, allowed)
            if spec is None:
                type(self).refused += 1
                raise ModuleNotFoundError(f"No module named {name!r} (guarded)", name=name)
            return spec
        return None  # submodules follow the package's own __path__ (already allowed)


sys.meta_path.insert(0, OnlyTheExtensionsWheel())

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bpy  # noqa: E402
from _harness import emit, our_handlers, shaman_threads, state  # noqa: E402

PKG = "shaman_submitter"
MODULE = f"bl_ext.user_default.{PKG}"


def bat_importable() -> str:
    try:
        import blender_asset_tracer
    except ImportError as exc:
        return f"no: {exc}"
    return f"yes: {blender_asset_tracer.__file__}"


def submit(out: dict, key: str) -> None:
    try:
        out[key] = sorted(bpy.ops.shaman.submit(unsaved_changes="DISK"))
        out[key + "_error"] = ""
    except RuntimeError as exc:
        out[key], out[key + "_error"] = [], str(exc)


def main() -> int:
    zip_path, blend, server_url = sys.argv[1], sys.argv[2], sys.argv[3]
    neighbour = sys.argv[4] if len(sys.argv) > 4 else ""
    out: dict = {"bat_before": bat_importable()}
    repos = bpy.context.preferences.extensions.repos
    repo_index = next(i for i, r in enumerate(repos) if r.module == "user_default")
    if neighbour:  # another extension bundling the same BAT wheel, installed first
        out["neighbour_install"] = sorted(bpy.ops.extensions.package_install_files(
            filepath=neighbour, repo="user_default", enable_on_install=True))
    ret = bpy.ops.extensions.package_install_files(
        filepath=zip_path, repo="user_default", enable_on_install=True
    )
    out["install"] = sorted(ret)
    out["enabled"] = MODULE in bpy.context.preferences.addons
    out["installed_dir"] = str(Path(repos[repo_index].directory) / PKG)
    out["installed_files"] = sorted(
        p.name for p in (Path(repos[repo_index].directory) / PKG).iterdir()
    )

    bpy.context.preferences.addons[MODULE].preferences.server_url = server_url
    bpy.ops.wm.open_mainfile(filepath=blend, load_ui=False)
    submit(out, "submit")
    if neighbour:  # the neighbour leaves: the shared wheel must stay for us
        out["neighbour_uninstall"] = sorted(bpy.ops.extensions.package_uninstall(
            repo_index=repo_index, pkg_id="bat_neighbour"))
        out["bat_dirs_after_neighbour"] = bat_dirs()
        submit(out, "submit_after_neighbour")
    st = state()
    out["checkout_path"] = st.checkout_path
    out["worker_path"] = st.worker_path
    bat = sys.modules.get(GUARDED)
    out["bat_used_from"] = getattr(bat, "__file__", None)
    out["guard_refusals"] = OnlyTheExtensionsWheel.refused
    out["handlers_enabled"] = our_handlers()

    # disable, then uninstall
    import addon_utils

    addon_utils.disable(MODULE, default_set=True, handle_error=_raise)
    out["enabled_after_disable"] = MODULE in bpy.context.preferences.addons
    out["handlers_after_disable"] = our_handlers()
    out["threads_after_disable"] = shaman_threads()
    out["wm_state_after_disable"] = hasattr(bpy.types.WindowManager, "shaman")
    out["op_after_disable"] = hasattr(bpy.types, "SHAMAN_OT_submit")
    ret = bpy.ops.extensions.package_uninstall(repo_index=repo_index, pkg_id=PKG)
    out["uninstall"] = sorted(ret)
    out["dir_after_uninstall"] = (Path(repos[repo_index].directory) / PKG).exists()
    out["wheel_after_uninstall"] = bat_dirs()
    out["threads_end"] = shaman_threads()
    emit(out)
    return 0


def bat_dirs() -> list[str]:
    local = USER / "extensions" / ".local"
    if not local.exists():
        return []
    return sorted(
        str(p.relative_to(USER)) for p in local.rglob("blender_asset_tracer*") if p.is_dir()
    )


def _raise(exc: BaseException) -> None:
    raise exc


if __name__ == "__main__":
    sys.exit(main())
