"""Fuzzing user profiles in `<config>/ems_profiles` on a running hub: a broken or odd profile
never stops the hub; its device is left out with a translated repair and a log line naming the
file, or it loads and is polled like any other."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from hypothesis import HealthCheck, given, settings, strategies as st
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
import yaml

from custom_components.ems.const import DOMAIN, SUBENTRY_DEVICE
from custom_components.ems.engine.profiles.loader import BUILTIN_DIR
from custom_components.ems.glue.devices import _load_catalogue
from simulator import SiteSimulator

from ...integration.conftest import device_subentry
from ..test_profiles import mutate, mutation

STRINGS: dict[str, Any] = json.loads(
    (BUILTIN_DIR.parents[1] / "translations" / "en.json").read_text(encoding="utf-8")
)
PROFILE_ID = "my_heat_pump"
FILE = f"{PROFILE_ID}.yaml"
# The simulator's heat-pump meter is an SDM120 at unit 5: the user describes it themselves.
BASE_TEXT = (
    (BUILTIN_DIR / "eastron_sdm120.yaml")
    .read_text(encoding="utf-8")
    .replace("id: eastron_sdm120", f"id: {PROFILE_ID}")
)
BASE: dict[str, Any] = yaml.safe_load(BASE_TEXT)
HUB = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@st.composite
def profile_file(draw: st.DrawFn) -> bytes:
    """The user's file: the SDM120 with mutated fields, edited text, or plain garbage."""
    how = draw(st.sampled_from(["fields", "fields", "text", "bytes"]))
    if how == "fields":
        document = copy.deepcopy(BASE)
        for change in draw(st.lists(mutation(BASE), min_size=1, max_size=3)):
            mutate(document, change)
        return yaml.safe_dump(document, allow_unicode=True).encode("utf-8")
    if how == "text":
        text = BASE_TEXT
        at = draw(st.integers(0, len(text)))
        return (
            text[:at] + draw(st.text(max_size=4)) + text[at + draw(st.integers(0, 4)) :]
        ).encode("utf-8", errors="surrogatepass")
    return draw(st.binary(max_size=64))


def _write(hass: HomeAssistant, raw: bytes | None) -> None:
    """Write the user's file, or remove it: the test config folder outlives the test."""
    folder = Path(hass.config.path("ems_profiles"))
    folder.mkdir(exist_ok=True)
    if raw is None:
        (folder / FILE).unlink(missing_ok=True)
    else:
        (folder / FILE).write_bytes(raw)


@HUB
@given(raw=profile_file())
async def test_hub_survives_any_user_profile(
    hass: HomeAssistant,
    simulator: SiteSimulator,
    issue_registry: ir.IssueRegistry,
    caplog: pytest.LogCaptureFixture,
    raw: bytes,
) -> None:
    """The hub always loads; the user's device is polled, or left out with a repair."""
    caplog.clear()
    await hass.async_add_executor_job(_write, hass, raw)
    entry = MockConfigEntry(
        domain=DOMAIN,
        version=2,
        title="hub",
        unique_id=f"127.0.0.1:{simulator.port}",
        data={"host": "127.0.0.1", "port": simulator.port},
        subentries_data=[device_subentry(5, PROFILE_ID, "load", "Heat pump")],
    )
    entry.add_to_hass(hass)
    try:
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        assert entry.state is ConfigEntryState.LOADED
        units = [device.unit_id for device in entry.runtime_data.coordinator.devices.values()]
        heat_pump = next(s for s in entry.subentries.values() if s.unique_id == "5")
        issue = issue_registry.async_get_issue(DOMAIN, f"profile_missing_{heat_pump.subentry_id}")
        if 5 in units:
            assert issue is None
        else:
            assert issue is not None
            assert issue.translation_key in STRINGS["issues"]
            assert issue.translation_placeholders == {"device": "Heat pump", "profile": PROFILE_ID}
            catalogue = await hass.async_add_executor_job(
                _load_catalogue, Path(hass.config.path("ems_profiles"))
            )
            if errors := [e for e in catalogue.errors if e.file == FILE]:
                # The log and a repair say which file and where; another says which device.
                assert f"Profile not loaded: {errors[0]}" in caplog.text
                file_issues = [
                    i
                    for i in issue_registry.issues.values()
                    if i.domain == DOMAIN and (i.translation_placeholders or {}).get("file") == FILE
                ]
                assert file_issues
                assert all(i.translation_key in STRINGS["issues"] for i in file_issues)
            else:  # the file loads, under another id than the device asks for
                assert PROFILE_ID not in catalogue.profiles
    finally:
        await hass.config_entries.async_remove(entry.entry_id)
        await hass.async_block_till_done()
        await hass.async_add_executor_job(_write, hass, None)


async def test_broken_files_do_not_break_the_device_flow(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """The device step still offers the shipped profiles beside broken user files."""
    try:
        for raw in (b"\xff\xfe", b"id: [" * 3, b"channels: {}", b"[" * 100_000):
            await hass.async_add_executor_job(_write, hass, raw)
            result = await hass.config_entries.subentries.async_init(
                (init_integration.entry_id, SUBENTRY_DEVICE), context={"source": SOURCE_USER}
            )
            result = await hass.config_entries.subentries.async_configure(
                result["flow_id"], {"unit_id": 5}
            )
            assert result["type"] is FlowResultType.FORM
            assert result["step_id"] == "device"
            hass.config_entries.subentries.async_abort(result["flow_id"])
    finally:
        await hass.async_add_executor_job(_write, hass, None)
