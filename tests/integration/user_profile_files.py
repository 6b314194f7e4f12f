"""The user's profile folder (`<config>/ems_profiles/`) as the tests fill and empty it."""

from __future__ import annotations

from pathlib import Path

from homeassistant.core import HomeAssistant

from custom_components.ems.const import USER_PROFILE_DIR


def write_profile(hass: HomeAssistant, name: str, text: str) -> None:
    """Put a profile file where ems looks for the user's own (run in the executor)."""
    folder = Path(hass.config.path(USER_PROFILE_DIR))
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")


def remove_profiles(hass: HomeAssistant, *names: str) -> None:
    """Take profile files away again: the test config folder outlives a test."""
    for name in names:
        Path(hass.config.path(USER_PROFILE_DIR), name).unlink(missing_ok=True)
