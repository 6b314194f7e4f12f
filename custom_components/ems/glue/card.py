"""The site card ships inside the integration: ems serves it and loads it on every dashboard.

Named `card` rather than `frontend` so that it never shadows Home Assistant's `frontend`
component, which it calls.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Final

from homeassistant.components import frontend
from homeassistant.components.http import (  # type: ignore[attr-defined,unused-ignore]
    HomeAssistantHTTP,
    StaticPathConfig,
)
from homeassistant.core import HomeAssistant
from homeassistant.loader import async_get_integration

from ..const import DOMAIN

_LOGGER = logging.getLogger(__name__)

CARD_FILE: Final = Path(__file__).parents[1] / "frontend" / "ems-site-card.js"
# Outside `/ems/...`: a dashboard a user names `ems` owns that path in the frontend's router.
CARD_URL: Final = f"/{DOMAIN}_static/ems-site-card.js"


async def async_register_card(hass: HomeAssistant) -> None:
    """Serve the card and add it to the modules every dashboard loads."""
    # Absent when Home Assistant runs without its web server (as in most tests).
    http: HomeAssistantHTTP | None = getattr(hass, "http", None)
    if http is None:
        return
    digest = await hass.async_add_executor_job(_content_digest)
    # Cached for a month by browsers: the query string changes with every release and edit.
    await http.async_register_static_paths(
        [StaticPathConfig(CARD_URL, str(CARD_FILE), cache_headers=True)]
    )
    if "frontend" not in hass.config.components:
        _LOGGER.debug("No frontend loaded; %s is served but not added to dashboards", CARD_URL)
        return
    integration = await async_get_integration(hass, DOMAIN)
    frontend.add_extra_js_url(hass, f"{CARD_URL}?v={integration.version}-{digest}")


def _content_digest() -> str:
    return hashlib.sha256(CARD_FILE.read_bytes()).hexdigest()[:8]
