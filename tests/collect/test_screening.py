"""Which dependencies leave, which are refused, which are never read (issue 13, items 4
and 5): the credential-store list, system folders, and symlinks counted by their target,
on a real .blend collected in process."""

from __future__ import annotations

from pathlib import Path

import pytest

from shaman_addon.collect.collector import collect
from shaman_addon.collect.sensitive import CREDENTIAL_STORES, credential_store, system_file
from shaman_addon.errors import CredentialFileRefused

from fault_blends import make_blend


@pytest.mark.parametrize(("path", "store"), [
    ("/home/ann/.ssh/id_rsa", ".ssh"),
    ("/root/.ssh", ".ssh"),
    ("/home/ann/.aws/credentials", ".aws"),
    ("/home/ann/.netrc", ".netrc"),
    ("/home/ann/.config/gcloud/application_default_credentials.json", ".config/gcloud"),
    ("/home/ann/.local/share/keyrings/login.keyring", ".local/share/keyrings"),
    ("/home/ann/.docker/config.json", ".docker/config.json"),
    ("C:\\Users\\ann\\.ssh\\id_ed25519", ".ssh"),
    ("/home/ann/.git-credentials", ".git-credentials"),
    ("/home/ann/.kube/config", ".kube"),
    ("/home/ann/.docker/buildx/x.png", None),  # only config.json of .docker
    ("/home/ann/ssh/id_rsa.png", None),
    ("/home/ann/.config/blender/4.2/tex.png", None),
    ("/proj/tex/.sshx/a.png", None),
])
def test_credential_stores(path: str, store: str | None) -> None:
    assert credential_store(path) == store


def test_every_store_is_found_under_a_home() -> None:
    for store in CREDENTIAL_STORES:
        assert credential_store(f"/home/ann/{store}/inner") == store


def test_system_folders() -> None:
    assert "device" in (system_file("/dev/zero") or "")
    assert "/proc" in (system_file("/proc/self/environ") or "")
    assert "/sys" in (system_file("/sys/kernel/notes") or "")
    assert system_file("/devices/tex.png") is None
    assert system_file("/home/ann/proc/x.png") is None


def test_symlinks_count_by_their_target(tmp_path: Path) -> None:
    real_project = tmp_path / "real-project"
    (real_project / "tex").mkdir(parents=True)
    (real_project / ".blender_project").mkdir()
    (real_project / "tex" / "in.png").write_bytes(b"in")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "out.png").write_bytes(b"out")
    (real_project / "tex" / "link.png").symlink_to(tmp_path / "elsewhere" / "out.png")
    (real_project / "tex" / "inner.png").symlink_to(real_project / "tex" / "in.png")
    # The project reached through a symlinked folder: its own files stay inside.
    project = tmp_path / "project"
    project.symlink_to(real_project)
    blend = make_blend(project / "shot.blend",
                       ["//tex/in.png", "//tex/link.png", "//tex/inner.png"])
    plan = collect(blend)
    try:
        outside = {o.path: o for o in plan.outside_project}
        assert list(outside) == [str(project / "tex" / "link.png")]
        assert outside[str(project / "tex" / "link.png")].target == str(
            tmp_path / "elsewhere" / "out.png")
        assert outside[str(project / "tex" / "link.png")].referenced_by == (
            f"{blend}: IM img_001",)
        # Still placed where Blender finds it in the project: the .blend is not changed.
        cps = {str(f.original): f.checkout_path for f in plan.files}
        assert cps[str(project / "tex" / "link.png")] == "tex/link.png"
    finally:
        plan.cleanup()
    # A link into a credential store is refused, however the link is named.
    (tmp_path / "home" / ".gnupg").mkdir(parents=True)
    (tmp_path / "home" / ".gnupg" / "secring.gpg").write_bytes(b"key")
    (real_project / "tex" / "innocent.png").symlink_to(tmp_path / "home/.gnupg/secring.gpg")
    blend2 = make_blend(project / "shot2.blend", ["//tex/in.png", "//tex/innocent.png"])
    with pytest.raises(CredentialFileRefused) as caught:
        collect(blend2)
    assert "innocent.png" in str(caught.value) and ".gnupg" in str(caught.value)
    assert "--allow-credential-files" in str(caught.value)
    plan = collect(blend2, allow_credentials=True)
    try:
        assert [o.credential_store for o in plan.outside_project] == [".gnupg"]
    finally:
        plan.cleanup()
