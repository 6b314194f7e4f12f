"""End to end in a real browser: the ems dashboard in headless Chromium against a running
Home Assistant and the site simulator (both started by `scripts/develop --run`, see scripts/e2e).

1. Log in as the demo user (tokens put where the frontend keeps them) and open the dashboard.
2. The card's grid, solar, battery and home powers match Home Assistant's site sensors, and its
   grid power matches what the simulated grid meter itself answers over Modbus.
3. A click on the card's "Force charge" button (a real mouse event at the button's place) makes
   ems write StorCtl_Mod = charge to the simulated battery, and the battery starts charging.
4. Screenshots in light and dark theme, before and after the click.

Chromium is driven over the DevTools protocol with aiohttp (already in the venv), so no browser
driver is installed. Prints a JSON summary; exits 1 on the first failed check.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
from collections.abc import Awaitable, Callable
import contextlib
import inspect
import json
import os
from pathlib import Path
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from typing import Any
import urllib.parse
import urllib.request

import aiohttp
from pymodbus.client import AsyncModbusTcpClient

HA_URL = os.environ.get("EMS_HA_URL", "http://127.0.0.1:8123")
CONFIG = Path(os.environ.get("EMS_CONFIG", "config"))
SIM_PORT = int(os.environ.get("EMS_SIM_PORT", "5020"))
DASHBOARD = "/ems-site/site"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1400",
)
GRID_METER_UNIT, BATTERY_UNIT = 1, 3
SDM630_TOTAL_POWER = 0x0034  # input registers, float32, high word first
STORCTL_MOD = 40075  # SunSpec 124 at 40070: ID, L, WChaMax, WChaGra, WDisChaGra, StorCtl_Mod
CHARGE_BIT = 0x1
SITE_POWERS = {
    "grid": "sensor.site_grid_power",
    "production": "sensor.site_production_power",
    "battery": "sensor.site_battery_power",
    "consumption": "sensor.site_consumption_power",
}
# In JavaScript: find the first element matching a selector through every shadow root.
DEEP_QUERY = """
(selector) => {
  const seen = new Set();
  const walk = (root) => {
    const hit = root.querySelector(selector);
    if (hit) return hit;
    for (const el of root.querySelectorAll('*')) {
      if (el.shadowRoot && !seen.has(el.shadowRoot)) {
        seen.add(el.shadowRoot);
        const found = walk(el.shadowRoot);
        if (found) return found;
      }
    }
    return null;
  };
  return walk(document);
}
"""


class CheckFailedError(Exception):
    """An end-to-end expectation did not hold."""


# ---- Home Assistant over REST ------------------------------------------------------------------


def _tokens() -> dict[str, Any]:
    credentials = json.loads((CONFIG / ".ems-develop.json").read_text(encoding="utf-8"))
    form = urllib.parse.urlencode(
        {
            "grant_type": "refresh_token",
            "refresh_token": credentials["refresh_token"],
            "client_id": credentials["client_id"],
        }
    ).encode()
    with urllib.request.urlopen(f"{HA_URL}/auth/token", form, timeout=10) as response:
        token = json.load(response)
    return {**token, **credentials}


def _state(access_token: str, entity_id: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{HA_URL}/api/states/{entity_id}", headers={"Authorization": f"Bearer {access_token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        state: dict[str, Any] = json.load(response)
    return state


# ---- The simulator, asked directly --------------------------------------------------------------


def _unit_keyword(method: Callable[..., Any]) -> str:
    # pymodbus renamed `slave=` to `device_id=` in 3.10.
    return "device_id" if "device_id" in inspect.signature(method).parameters else "slave"


async def _simulator_grid_power_w() -> float:
    client = AsyncModbusTcpClient("127.0.0.1", port=SIM_PORT, timeout=3)
    await client.connect()
    try:
        read = client.read_input_registers
        words = (
            await read(SDM630_TOTAL_POWER, count=2, **{_unit_keyword(read): GRID_METER_UNIT})
        ).registers
    finally:
        client.close()
    return float(struct.unpack(">f", struct.pack(">HH", *words))[0])


async def _simulator_storage_mode() -> int:
    client = AsyncModbusTcpClient("127.0.0.1", port=SIM_PORT, timeout=3)
    await client.connect()
    try:
        read = client.read_holding_registers
        result = await read(STORCTL_MOD, count=1, **{_unit_keyword(read): BATTERY_UNIT})
    finally:
        client.close()
    return int(result.registers[0])


# ---- Chromium over the DevTools protocol --------------------------------------------------------


class Browser:
    """One headless Chromium page, commanded over its DevTools websocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._next_id = 0

    async def command(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        await self._ws.send_json({"id": self._next_id, "method": method, "params": params})
        while True:
            message = await self._ws.receive_json()
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise CheckFailedError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    async def evaluate(self, expression: str) -> Any:
        result = await self.command(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise CheckFailedError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def deep(self, selector: str, body: str) -> Any:
        """Run `body` (JavaScript, with `el` bound) on the first element matching `selector`
        anywhere in the page, shadow roots included; null if there is none."""
        return await self.evaluate(
            f"(() => {{ const el = ({DEEP_QUERY})({json.dumps(selector)});"
            f" return el ? (() => {{ {body} }})() : null; }})()"
        )

    async def navigate(self, url: str) -> None:
        await self.command("Page.navigate", url=url)

    async def screenshot(self, path: Path) -> None:
        shot = await self.command("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))

    async def click_at(self, x: float, y: float) -> None:
        for kind in ("mousePressed", "mouseReleased"):
            await self.command(
                "Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1
            )


@contextlib.asynccontextmanager
async def _chromium(executable: str) -> Any:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    profile = tempfile.mkdtemp(prefix="ems-e2e-chromium-")
    process = subprocess.Popen(  # noqa: S603 - a fixed argument list
        [executable, *CHROMIUM_FLAGS, f"--remote-debugging-port={port}",
         f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        pages = await _until(
            lambda: _devtools_pages(port), "Chromium's DevTools endpoint", timeout=30
        )
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws,
        ):
            yield Browser(ws)
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)
        shutil.rmtree(profile, ignore_errors=True)


async def _devtools_pages(port: int) -> list[dict[str, Any]] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=2) as response:
            pages = [page for page in json.load(response) if page["type"] == "page"]
    except OSError:
        return None
    return pages or None


async def _until[T](
    probe: Callable[[], Awaitable[T | None]], what: str, *, timeout: float, every: float = 0.5
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        if (value := await probe()) is not None:
            return value
        if time.monotonic() > deadline:
            raise CheckFailedError(f"{what}: not there after {timeout:.0f} s")
        await asyncio.sleep(every)


# ---- The checks ---------------------------------------------------------------------------------

_POWER = re.compile(r"^\s*(-?[\d.,]+)\s*(W|kW|MW)\s*$")
_SCALE = {"W": 1.0, "kW": 1e3, "MW": 1e6}


def _watts(text: str) -> float:
    """A power as the card formats it ("850 W", "1.24 kW")."""
    if not (match := _POWER.match(text)):
        raise CheckFailedError(f"not a power: {text!r}")
    return float(match.group(1).replace(",", "")) * _SCALE[match.group(2)]


async def _card_powers(browser: Browser) -> dict[str, float] | None:
    text = await browser.deep(
        "ems-site-card",
        "const r = el.shadowRoot; if (!r) return null; const out = {};"
        " for (const n of ['grid','production','battery','consumption']) {"
        '  const v = r.querySelector(`[data-node="${n}"] .value`);'
        "  if (!v || v.textContent.trim() === '—') return null;"
        "  out[n] = v.textContent.trim(); } return out;",
    )
    return None if text is None else {name: _watts(value) for name, value in text.items()}


def _close(card_w: float, other_w: float) -> bool:
    # The card rounds (3 significant digits in kW); a cycle may land between two reads.
    return abs(abs(card_w) - abs(other_w)) <= max(0.05 * abs(other_w), 60.0)


async def _check_live_numbers(
    browser: Browser, access_token: str, *, grid_at_least_w: float = 0.0
) -> dict[str, Any]:
    """Several tries: the card, HA and the meter are read a moment apart, and values move."""
    last: dict[str, Any] = {}
    for _ in range(30):
        card = await _card_powers(browser)
        states = {name: _state(access_token, eid)["state"] for name, eid in SITE_POWERS.items()}
        meter = await _simulator_grid_power_w()
        last = {"card_w": card, "ha_w": states, "grid_meter_w": meter}
        if (
            card is not None
            and all(_close(card[name], float(state)) for name, state in states.items())
            and _close(card["grid"], meter)
            and abs(meter) >= grid_at_least_w
        ):
            return last
        await asyncio.sleep(1.5)
    raise CheckFailedError(f"the card's powers do not match: {json.dumps(last)}")


async def _click_mode(browser: Browser, mode: str) -> None:
    selector = f'button[data-mode="{mode}"]'
    box = await _until(
        lambda: browser.deep(
            "ems-site-card",
            f"const b = el.shadowRoot && el.shadowRoot.querySelector('{selector}');"
            " if (!b) return null; b.scrollIntoView({block: 'center'});"
            " const r = b.getBoundingClientRect();"
            " return {x: r.x + r.width / 2, y: r.y + r.height / 2};",
        ),
        f"the card's {mode} button",
        timeout=30,
    )
    await browser.click_at(box["x"], box["y"])


async def _run(screenshots: Path, executable: str) -> dict[str, Any]:
    screenshots.mkdir(parents=True, exist_ok=True)
    tokens = _tokens()
    summary: dict[str, Any] = {"dashboard": HA_URL + DASHBOARD}
    async with _chromium(executable) as browser:
        await browser.command("Page.enable")
        await browser.navigate(HA_URL + "/")
        await _until(
            lambda: browser.evaluate("document.readyState === 'complete' || null"),
            "the login page",
            timeout=30,
        )
        stored = {
            "access_token": tokens["access_token"],
            "refresh_token": tokens["refresh_token"],
            "expires_in": tokens["expires_in"],
            "token_type": "Bearer",
            "hassUrl": HA_URL,
            "clientId": tokens["client_id"],
            "expires": int(time.time() * 1000) + tokens["expires_in"] * 1000,
        }
        await browser.evaluate(
            f"localStorage.setItem('hassTokens', {json.dumps(json.dumps(stored))});"
            " localStorage.setItem('selectedTheme', JSON.stringify({dark: false}));"
        )
        await _open_dashboard(browser, screenshots)
        summary["live"] = await _check_live_numbers(browser, tokens["access_token"])
        await asyncio.sleep(1)  # let the flow animation settle for the picture
        await browser.screenshot(screenshots / "dashboard-light.png")

        # The demo's options (battery control, tariff) apply with a reload after the first
        # values; a price means they are in force.
        await _until(
            lambda: _number_state(tokens["access_token"], "sensor.site_current_import_price"),
            "the hub's options in force",
            timeout=60,
        )
        before = await _simulator_storage_mode()
        await _click_mode(browser, "force_charge")
        mode = await _until(
            lambda: _storage_mode_when(lambda m: bool(m & CHARGE_BIT)),
            "StorCtl_Mod = charge at the simulated battery",
            timeout=30,
        )
        charging = await _until(
            lambda: _battery_charging(tokens["access_token"]),
            "the simulated battery charging",
            timeout=60,
        )
        summary["battery"] = {
            "storctl_mod_before": before,
            "storctl_mod_after": mode,
            "site_battery_power_w": charging,
        }
        # Now the grid certainly carries power (the charge comes from it at night): the card
        # must still agree with the meter, on a number that is not zero.
        summary["live_charging"] = await _check_live_numbers(
            browser, tokens["access_token"], grid_at_least_w=100.0
        )
        await browser.screenshot(screenshots / "dashboard-force-charge.png")

        await browser.evaluate(
            "localStorage.setItem('selectedTheme', JSON.stringify({dark: true}))"
        )
        await _open_dashboard(browser, screenshots)
        await asyncio.sleep(1)
        await browser.screenshot(screenshots / "dashboard-dark.png")
        await _click_mode(browser, "auto")
        summary["released"] = await _until(
            lambda: _storage_mode_when(lambda m: m == 0), "StorCtl_Mod = auto", timeout=30
        )
    summary["screenshots"] = sorted(str(p) for p in screenshots.glob("dashboard-*.png"))
    return summary


async def _open_dashboard(browser: Browser, screenshots: Path) -> None:
    """Open the dashboard until the card shows numbers. A first load of the frontend on a busy
    machine can miss the card's module; a second load has it cached."""
    for attempt in range(3):
        await browser.navigate(HA_URL + DASHBOARD)
        try:
            await _until(lambda: _card_powers(browser), "live numbers in the card", timeout=30)
        except CheckFailedError:
            await browser.screenshot(screenshots / f"failed-load-{attempt}.png")
            if attempt == 2:
                raise
        else:
            return


async def _storage_mode_when(accept: Callable[[int], bool]) -> int | None:
    mode = await _simulator_storage_mode()
    return mode if accept(mode) else None


async def _number_state(access_token: str, entity_id: str) -> float | None:
    try:
        return float(_state(access_token, entity_id)["state"])
    except (ValueError, OSError):
        return None


async def _battery_charging(access_token: str) -> float | None:
    state = _state(access_token, SITE_POWERS["battery"])["state"]
    try:
        power = float(state)
    except ValueError:
        return None
    return power if power < -50 else None  # ems signs: battery power < 0 while charging


def main() -> int:
    """Run the checks; print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenshots", type=Path, default=Path(".e2e-artifacts"))
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    try:
        summary = asyncio.run(_run(args.screenshots, args.chromium))
    except CheckFailedError as err:
        print(f"e2e: FAILED: {err}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    print("e2e: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
