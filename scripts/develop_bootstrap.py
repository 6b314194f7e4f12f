"""Set up the development Home Assistant that scripts/develop runs, and summarise it.

On the first run: onboard the owner `demo` / `demo` over REST, finish the remaining onboarding
steps, and add an ems hub through the integration's real config flow. Every run: log in, wait
until ems sensors have numbers, and print a summary. Runs already done are left alone, so this
is safe to repeat. Standard library only; talks to http://127.0.0.1:8123 and nothing else.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path
import sys
import time
from typing import Any
import urllib.error
import urllib.parse
import urllib.request

# scripts/develop passes its ports and config directory (scripts/e2e runs a second instance).
BASE_URL = f"http://127.0.0.1:{os.environ.get('EMS_HA_PORT', '8123')}"
SIM_PORT = int(os.environ.get("EMS_SIM_PORT", "5020"))
CLIENT_ID = f"{BASE_URL}/"
REDIRECT_URI = f"{BASE_URL}/?auth_callback=1"
OWNER = {"name": "Demo", "username": "demo", "password": "demo", "language": "en"}
CREDENTIALS_FILE = (
    Path(__file__).resolve().parent.parent / os.environ.get("EMS_CONFIG", "config")
) / ".ems-develop.json"

# ---- The ems config flow, as the UI would fill it in. -------------------------------------
# One payload per step, in the order the flow asks for them. When the flow grows a step, add
# its payload here; a menu step takes {"next_step_id": "<step>"}.
EMS_DOMAIN = "ems"
EMS_FLOW_STEPS: list[dict[str, Any]] = [
    {"next_step_id": "network"},  # menu "user": a network gateway, not a serial port
    {"transport": "tcp", "host": "127.0.0.1", "port": SIM_PORT, "unit_id": 1},  # step "network"
    {"profile": "eastron_sdm630", "name": "Grid meter", "role": "grid"},  # step "device"
]
# The demo lets ems steer the simulated battery (the option is off on a fresh hub).
EMS_OPTIONS: dict[str, Any] = {
    "scan_interval": 10,
    "timeout": 3,
    "max_read": 125,
    "max_gap": 16,
    "allow_control": True,
}
# The demo's tariff (the options flow's second step): a time-of-use import price, a flat
# export price, a monthly fee and a fixed CO2 factor.
EMS_TARIFF: dict[str, Any] = {
    "price_mode": "time_of_use",
    "import_price": 0.32,
    "tou_schedule": "all 22:00-06:00 0.24\nweekday 17:00-20:00 0.41",
    "export_mode": "flat",
    "export_price": 0.08,
    "fee_amount": 12.0,
    "fee_period": "month",
    "demand_charge": 0,
    "co2_mode": "factor",
    "co2_factor": 0.38,
    "co2_export_avoided": True,
}
# Further devices of the simulated site, each added through the device subentry flow.
EMS_DEVICE_STEPS: list[list[dict[str, Any]]] = [
    [{"unit_id": 2}, {"profile": "sunspec", "name": "PV inverter", "role": "production"}],
    [{"unit_id": 3}, {"profile": "sunspec", "name": "Battery", "role": "battery"}],
    [{"unit_id": 4}, {"profile": "sunspec", "name": "PV meter", "role": "submeter"}],
    [{"unit_id": 5}, {"profile": "eastron_sdm120", "name": "Heat pump", "role": "load"}],
]
# -------------------------------------------------------------------------------------------

# The core_config onboarding step starts config flows for these on its own. Their packages
# are not in .venv (only shopping_list works), so remove the entries they leave behind.
ONBOARDING_EXTRAS = ("google_translate", "met", "radio_browser", "shopping_list")
EXTRAS_SETTLE = 3.0

# Entry states that will not turn into "loaded" by waiting (setup_retry may).
FAILED_ENTRY_STATES = ("setup_error", "migration_error", "failed_unload")
RUNNING_TIMEOUT = 60.0
VALUES_TIMEOUT = 90.0
STATES_SHOWN = 8
INTEGRATION_TEMPLATE = "{{ integration_entities('ems') | list }}"
ENTITY_IDS_TEMPLATE = "{{ integration_entities('ems') | list | tojson }}"


class BootstrapError(Exception):
    """A step failed; the message says which and what Home Assistant answered."""

    def __init__(self, message: str, status: int | None = None) -> None:
        """Keep the HTTP status, if there was one."""
        super().__init__(message)
        self.status = status


def _request(
    method: str,
    path: str,
    *,
    token: str | None = None,
    json_body: dict[str, Any] | None = None,
    form: dict[str, str] | None = None,
) -> str:
    """Send one request and return the body; raise with status and body on any HTTP error."""
    headers: dict[str, str] = {}
    data: bytes | None = None
    if json_body is not None:
        data = json.dumps(json_body).encode()
        headers["Content-Type"] = "application/json"
    elif form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(BASE_URL + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read().decode()  # type: ignore[no-any-return]
    except urllib.error.HTTPError as err:
        body = err.read().decode(errors="replace")
        raise BootstrapError(f"{method} {path} -> HTTP {err.code}: {body}", err.code) from None
    except urllib.error.URLError as err:
        raise BootstrapError(f"{method} {path} -> {err.reason}") from None


def _call(method: str, path: str, **kwargs: Any) -> Any:
    """Send one request and decode its JSON answer."""
    body = _request(method, path, **kwargs)
    return json.loads(body) if body else None


# ---- Authentication --------------------------------------------------------------------------


def _token_from_code(code: str) -> dict[str, Any]:
    form = {"grant_type": "authorization_code", "code": code, "client_id": CLIENT_ID}
    tokens: dict[str, Any] = _call("POST", "/auth/token", form=form)
    return tokens


def _token_from_refresh(refresh_token: str) -> str | None:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": CLIENT_ID}
    try:
        return str(_call("POST", "/auth/token", form=form)["access_token"])
    except BootstrapError:
        return None


def _tokens_from_password(username: str, password: str) -> dict[str, Any]:
    """Log in the way the frontend does: a login flow, then the code it returns."""
    flow = _call(
        "POST",
        "/auth/login_flow",
        json_body={
            "client_id": CLIENT_ID,
            "handler": ["homeassistant", None],
            "redirect_uri": REDIRECT_URI,
        },
    )
    result = _call(
        "POST",
        f"/auth/login_flow/{flow['flow_id']}",
        json_body={"username": username, "password": password, "client_id": CLIENT_ID},
    )
    if result.get("type") != "create_entry":
        raise BootstrapError(
            f"login as {username!r} failed: {result.get('errors')}. config/ was set up with "
            "another login; delete config/ to start over"
        )
    return _token_from_code(result["result"])


def _save_credentials(refresh_token: str) -> None:
    credentials = {
        "url": BASE_URL,
        "client_id": CLIENT_ID,
        "username": OWNER["username"],
        "password": OWNER["password"],
        "refresh_token": refresh_token,
    }
    CREDENTIALS_FILE.write_text(json.dumps(credentials, indent=2) + "\n")
    CREDENTIALS_FILE.chmod(0o600)


def _log_in() -> str:
    """An access token for a later run: the saved refresh token, else username and password."""
    saved: dict[str, str] = {}
    if CREDENTIALS_FILE.exists():
        saved = json.loads(CREDENTIALS_FILE.read_text())
        if token := _token_from_refresh(saved.get("refresh_token", "")):
            return token
    username = saved.get("username", OWNER["username"])
    tokens = _tokens_from_password(username, saved.get("password", OWNER["password"]))
    _save_credentials(tokens["refresh_token"])
    return str(tokens["access_token"])


# ---- Onboarding ------------------------------------------------------------------------------


def _onboarding_done() -> dict[str, bool]:
    """Which onboarding steps are done. Once all are, HA no longer serves /api/onboarding."""
    try:
        steps = _call("GET", "/api/onboarding")
    except BootstrapError as err:
        if err.status == 404:
            return {"user": True, "core_config": True, "analytics": True, "integration": True}
        raise
    return {step["step"]: step["done"] for step in steps}


def _create_owner() -> str:
    """The first onboarding step: the owner user. Returns an access token."""
    answer = _call("POST", "/api/onboarding/users", json_body={**OWNER, "client_id": CLIENT_ID})
    tokens = _token_from_code(answer["auth_code"])
    _save_credentials(tokens["refresh_token"])
    print(f"bootstrap: created the owner {OWNER['username']!r}")
    return str(tokens["access_token"])


def _remove_onboarding_extras(token: str) -> None:
    """Delete the entries the core_config step adds, as their flows finish in the background."""
    deadline = time.monotonic() + EXTRAS_SETTLE
    while time.monotonic() < deadline:
        for entry in _call("GET", "/api/config/config_entries/entry", token=token):
            if entry["domain"] in ONBOARDING_EXTRAS:
                path = f"/api/config/config_entries/entry/{entry['entry_id']}"
                _call("DELETE", path, token=token)
                print(f"bootstrap: removed the {entry['domain']} entry onboarding added")
        time.sleep(0.5)


def _finish_onboarding(token: str, done: dict[str, bool]) -> None:
    """The steps after the user, with the payloads the frontend sends in 2025.4."""
    payloads: dict[str, dict[str, Any]] = {
        "core_config": {},
        "analytics": {},
        "integration": {"client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI},
    }
    for step, payload in payloads.items():
        if not done.get(step, False):
            _call("POST", f"/api/onboarding/{step}", token=token, json_body=payload)
            print(f"bootstrap: onboarding step {step!r} done")
            if step == "core_config":
                _remove_onboarding_extras(token)


def _wait_running(token: str) -> None:
    deadline = time.monotonic() + RUNNING_TIMEOUT
    while (state := _call("GET", "/api/config", token=token)["state"]) != "RUNNING":
        if time.monotonic() > deadline:
            raise BootstrapError(f"Home Assistant still {state!r} after {RUNNING_TIMEOUT:.0f}s")
        time.sleep(0.5)


# ---- The ems config entry ------------------------------------------------------------------


def _ems_entries(token: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = _call(
        "GET", f"/api/config/config_entries/entry?domain={EMS_DOMAIN}", token=token
    )
    return entries


def _run_flow(
    token: str, path: str, start: dict[str, Any], steps: list[dict[str, Any]]
) -> dict[str, Any]:
    """Drive a real config (or subentry) flow, one payload per step."""
    try:
        result: dict[str, Any] = _call("POST", path, token=token, json_body=start)
    except BootstrapError as err:
        hint = "look for the traceback in config/home-assistant.log"
        raise BootstrapError(f"{err}\n  ({hint})") from None
    for payload in steps:
        if result.get("type") not in ("form", "menu"):
            break
        step = result.get("step_id")
        result = _call("POST", f"{path}/{result['flow_id']}", token=token, json_body=payload)
        if result.get("type") == "form" and result.get("errors"):
            raise BootstrapError(
                f"ems flow step {step!r} refused {payload}: errors {result.get('errors')}"
            )
    if result.get("type") != "create_entry":
        raise BootstrapError(f"ems flow did not create an entry: {json.dumps(result)}")
    return result


def _run_ems_flow(token: str) -> dict[str, Any]:
    """Add the ems hub with its grid meter, then the site's other devices as subentries."""
    start = {"handler": EMS_DOMAIN, "show_advanced_options": False}
    result = _run_flow(token, "/api/config/config_entries/flow", start, EMS_FLOW_STEPS)
    entry_id = result["result"]["entry_id"]
    for steps in EMS_DEVICE_STEPS:
        device_start = {"handler": [entry_id, "device"]}
        _run_flow(token, "/api/config/config_entries/subentries/flow", device_start, steps)
        print(f"bootstrap: added the device {steps[-1]['name']!r}")
    options_start = {"handler": entry_id}
    options_steps = [EMS_OPTIONS, EMS_TARIFF]
    _run_flow(token, "/api/config/config_entries/options/flow", options_start, options_steps)
    print("bootstrap: battery control allowed and a tariff set in the hub's options")
    return result


def _ensure_ems_entry(token: str) -> None:
    if entries := _ems_entries(token):
        for entry in entries:
            print(f"bootstrap: ems entry {entry['title']!r} exists, state {entry['state']}")
            if entry["state"] in FAILED_ENTRY_STATES:
                hint = "look for the traceback in config/home-assistant.log"
                raise BootstrapError(f"the ems entry failed to set up: {entry['state']} ({hint})")
        return
    result = _run_ems_flow(token)
    print(f"bootstrap: created the ems entry {result['title']!r}")


def _setup_energy_dashboard(token: str) -> None:
    """Put the hub's series into the Energy dashboard (the action replaces its own sources,
    so repeating it is harmless)."""
    for entry in _ems_entries(token):
        _call(
            "POST",
            "/api/services/ems/setup_energy_dashboard",
            token=token,
            json_body={"entry_id": entry["entry_id"]},
        )
        print(f"bootstrap: the Energy dashboard shows {entry['title']!r}")


# ---- Summary ---------------------------------------------------------------------------------


def _render(token: str, template: str) -> str:
    return _request("POST", "/api/template", token=token, json_body={"template": template})


def _is_number(state: str) -> bool:
    try:
        return math.isfinite(float(state))
    except ValueError:
        return False


def _is_live_measurement(state: dict[str, Any]) -> bool:
    """A meter reading: a numeric sensor with a unit.

    The hub's own counters have no unit and are numbers even when the meter does not answer.
    """
    return (
        state["entity_id"].startswith("sensor.")
        and bool(state["attributes"].get("unit_of_measurement"))
        and _is_number(state["state"])
    )


def _ems_states(token: str) -> list[dict[str, Any]]:
    entity_ids = set(json.loads(_render(token, ENTITY_IDS_TEMPLATE)))
    return [s for s in _call("GET", "/api/states", token=token) if s["entity_id"] in entity_ids]


def _wait_for_values(token: str) -> list[dict[str, Any]]:
    """The ems states once a meter reading is live, or as they are at the time limit."""
    deadline = time.monotonic() + VALUES_TIMEOUT
    while True:
        states = _ems_states(token)
        if any(_is_live_measurement(s) for s in states) or time.monotonic() > deadline:
            return states
        time.sleep(1)


def _print_summary(token: str, states: list[dict[str, Any]], started: float) -> int:
    """Print what a developer needs; return how many meter readings are live."""
    sensors = [s for s in states if s["entity_id"].startswith("sensor.")]
    numeric = [s for s in sensors if _is_number(s["state"])]
    live = [s for s in sensors if _is_live_measurement(s)]
    print()
    print(f"  URL:       {BASE_URL}")
    print(f"  Login:     {OWNER['username']} / {OWNER['password']}")
    print(f"  Template:  {INTEGRATION_TEMPLATE}")
    print(f"     gives:  {_render(token, INTEGRATION_TEMPLATE)}")
    elapsed = time.monotonic() - started
    print(f"  Sensors:   {len(numeric)} of {len(sensors)} numeric after {elapsed:.1f}s")
    for state in (live or sensors)[:STATES_SHOWN]:
        unit = state["attributes"].get("unit_of_measurement") or ""
        print(f"    {state['entity_id']} = {state['state']} {unit}".rstrip())
    print()
    return len(live)


def _bootstrap(*, check: bool) -> int:
    started = time.monotonic()
    done = _onboarding_done()
    token = _log_in() if done.get("user") else _create_owner()
    _wait_running(token)
    _finish_onboarding(token, done)
    _ensure_ems_entry(token)
    live = _print_summary(token, _wait_for_values(token), started)
    if live:
        _setup_energy_dashboard(token)
        return 0
    print(f"bootstrap: no ems meter reading is numeric after {VALUES_TIMEOUT:.0f}s")
    return 1 if check else 0


def main() -> int:
    """Set up once, then summarise; with --check, fail unless an ems reading is numeric."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 without a live reading")
    args = parser.parse_args()
    try:
        return _bootstrap(check=args.check)
    except BootstrapError as err:
        print(f"bootstrap: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
