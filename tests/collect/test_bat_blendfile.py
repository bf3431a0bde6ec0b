"""The BAT version check in front of the overridden private BlendFile methods."""

from __future__ import annotations

import blender_asset_tracer
import pytest
from blender_asset_tracer import blendfile

from shaman_addon.collect.bat_blendfile import BAT_VERSION, check_bat_version
from shaman_addon.errors import BatVersionMismatch


def test_the_installed_bat_is_the_one_the_hooks_were_written_for() -> None:
    assert blender_asset_tracer.__version__ == BAT_VERSION
    check_bat_version(blender_asset_tracer.__version__, blendfile.BlendFile)


def test_another_version_is_refused_naming_both() -> None:
    with pytest.raises(BatVersionMismatch) as info:
        check_bat_version("1.24", blendfile.BlendFile)
    assert "1.24" in str(info.value) and BAT_VERSION in str(info.value)


def test_a_missing_hook_is_refused_naming_it() -> None:
    class Renamed:
        def decode_structs(self) -> None: ...

    with pytest.raises(BatVersionMismatch, match="_open_file"):
        check_bat_version(BAT_VERSION, Renamed)
