// EMS site card: the power flowing between grid, PV, battery and home, the battery's state of
// charge and mode, and today's energy, cost and CO2 of an ems site.
//
// A plain custom element with no build step and no imports: the ems integration serves this
// file and adds it to every dashboard, so it must run as it is in any browser HA supports.
// It reads `hass.states` only; entities are found through the entity and device registries
// the frontend already holds (`hass.entities`, `hass.devices`). Schema: docs/card.md.

const CARD_TYPE = "ems-site-card";
const EDITOR_TYPE = "ems-site-card-editor";
const PLATFORM = "ems";
// The Site device's model (entity.py site_device_info); the editor's device picker offers these.
const SITE_MODEL = "Energy site";

const FLOWS = [
  "production_to_consumption",
  "production_to_grid",
  "production_to_battery",
  "grid_to_consumption",
  "grid_to_battery",
  "battery_to_consumption",
  "battery_to_grid",
];

// Roles the card fills, each with the translation_key of the ems entity that fills it by
// default. The role names are also the keys of the `entities:` overrides.
const SITE_ROLES = {
  grid_power: "grid_power",
  production_power: "production_power",
  battery_power: "battery_power",
  consumption_power: "consumption_power",
  ...Object.fromEntries(FLOWS.map((flow) => [`${flow}_power`, `${flow}_power`])),
  consumption_today: "consumption_today",
  production_today: "production_today",
  grid_import_today: "grid_import_today",
  grid_export_today: "grid_export_today",
  net_cost_today: "net_cost_today",
  co2_today: "co2_today",
  co2_avoided_today: "co2_avoided_today",
};
// Found on the battery devices of the same hub; the commanded mode (select) is preferred to the
// applied one (sensor), which exists for the same batteries.
const BATTERY_ROLES = {
  battery_soc: ["soc"],
  battery_mode: ["battery_mode", "applied_mode"],
};
const ROLES = [...Object.keys(SITE_ROLES), ...Object.keys(BATTERY_ROLES)];

const TODAY = [
  ["consumption_today", "Home"],
  ["production_today", "Solar"],
  ["grid_import_today", "Imported"],
  ["grid_export_today", "Exported"],
  ["net_cost_today", "Net cost"],
  ["co2_today", "CO₂"],
  ["co2_avoided_today", "CO₂ avoided"],
];

// Node centres in a 300 × 240 drawing; the HTML nodes sit at the same places in percent.
const NODES = {
  production: { x: 150, y: 40, icon: "mdi:solar-power-variant", label: "Solar" },
  grid: { x: 45, y: 120, icon: "mdi:transmission-tower", label: "Grid" },
  consumption: { x: 255, y: 120, icon: "mdi:home-lightning-bolt", label: "Home" },
  battery: { x: 150, y: 200, icon: "mdi:battery", label: "Battery" },
};
// Each line joins two nodes; a flow named `<from>_to_<to>` runs along it, forwards or back.
const LINKS = [
  ["production", "consumption"],
  ["production", "grid"],
  ["production", "battery"],
  ["grid", "consumption"],
  ["grid", "battery"],
  ["battery", "consumption"],
];
const SOURCE_COLOR = {
  production: "var(--energy-solar-color, #ff9800)",
  grid: "var(--energy-grid-consumption-color, #488fc2)",
  battery: "var(--energy-battery-out-color, #4db6ac)",
};
// Below this a line is drawn still: meters jitter by a few watts around zero.
const IDLE_W = 5;
const UNIT_FACTORS = { W: 1, kW: 1e3, MW: 1e6 };

// ---------------------------------------------------------------------------------------------
// Finding the site's entities
// ---------------------------------------------------------------------------------------------

function emsEntitiesByDevice(hass) {
  const byDevice = new Map();
  for (const entry of Object.values(hass.entities || {})) {
    if (entry.platform !== PLATFORM || !entry.device_id || !entry.translation_key) continue;
    const keys = byDevice.get(entry.device_id) || {};
    // An entity with a state beats one without (a leftover registry entry, say).
    const known = keys[entry.translation_key];
    if (!known || (!hass.states[known] && hass.states[entry.entity_id])) {
      keys[entry.translation_key] = entry.entity_id;
    }
    byDevice.set(entry.device_id, keys);
  }
  return byDevice;
}

function deviceName(hass, deviceId) {
  const device = (hass.devices || {})[deviceId];
  return (device && (device.name_by_user || device.name)) || deviceId;
}

function chooseSite(hass, config, byDevice) {
  const sites = [...byDevice.keys()].filter((id) => byDevice.get(id).consumption_power);
  if (config.device_id) return sites.includes(config.device_id) ? config.device_id : null;
  if (config.entry_id) {
    const entriesOf = (id) => (hass.devices || {})[id]?.config_entries || [];
    return sites.find((id) => entriesOf(id).includes(config.entry_id)) || null;
  }
  sites.sort((a, b) => deviceName(hass, a).localeCompare(deviceName(hass, b)));
  return sites[0] || null;
}

function siteBatteries(hass, site, byDevice) {
  const hubOf = (id) => (hass.devices || {})[id]?.via_device_id;
  const batteries = [...byDevice.keys()].filter((id) =>
    Object.values(BATTERY_ROLES).some((keys) => keys.some((key) => byDevice.get(id)[key])),
  );
  // Without the device registry the hub is unknown: a lone site owns every battery.
  const siteCount = [...byDevice.values()].filter((keys) => keys.consumption_power).length;
  if (!hubOf(site)) return siteCount === 1 ? batteries : [];
  return batteries.filter((id) => hubOf(id) === hubOf(site));
}

// Role → entity id: the site's ems entities, then the `entities:` overrides over them.
function discoverEntities(hass, config) {
  const found = {};
  const byDevice = emsEntitiesByDevice(hass);
  const site = chooseSite(hass, config, byDevice);
  if (site) {
    const keys = byDevice.get(site);
    for (const [role, key] of Object.entries(SITE_ROLES)) if (keys[key]) found[role] = keys[key];
    for (const battery of siteBatteries(hass, site, byDevice)) {
      const keys = byDevice.get(battery);
      for (const [role, candidates] of Object.entries(BATTERY_ROLES)) {
        const key = candidates.find((candidate) => keys[candidate]);
        if (key && !found[role]) found[role] = keys[key];
      }
    }
  }
  for (const [role, entityId] of Object.entries(config.entities || {})) {
    if (entityId) found[role] = entityId;
  }
  return found;
}

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

function numberOf(hass, entityId) {
  const state = entityId && hass.states[entityId];
  if (!state) return null;
  const value = Number.parseFloat(state.state);
  return Number.isFinite(value) ? value : null;
}

function watts(hass, entityId) {
  const value = numberOf(hass, entityId);
  if (value === null) return null;
  const unit = hass.states[entityId].attributes.unit_of_measurement;
  return value * (UNIT_FACTORS[unit] ?? 1);
}

// The site's powers in OpenEMS signs: grid > 0 imports, battery > 0 discharges, production ≥ 0.
// A site without PV or battery has no entity for it: that power is 0, not unknown.
function sitePowers(hass, entities) {
  const powers = {
    grid: watts(hass, entities.grid_power),
    production: entities.production_power ? watts(hass, entities.production_power) : 0,
    battery: entities.battery_power ? watts(hass, entities.battery_power) : 0,
    consumption: watts(hass, entities.consumption_power),
  };
  if (powers.consumption === null && !entities.consumption_power) {
    const { grid, production, battery } = powers;
    if (grid !== null && production !== null && battery !== null) {
      powers.consumption = grid + production + battery;
    }
  }
  return powers;
}

// The ems flow sensors where the site has them; otherwise the same split as ems's own
// (site.py split_flows): PV serves home, then battery, then grid; the battery serves what
// is left of home, then grid; the grid covers the rest.
function siteFlows(hass, entities, powers) {
  const measured = Object.fromEntries(
    FLOWS.map((flow) => [flow, watts(hass, entities[`${flow}_power`])]),
  );
  if (FLOWS.every((flow) => measured[flow] !== null)) return measured;
  if (powers.production === null || powers.battery === null || powers.consumption === null) {
    return null;
  }
  const production = Math.max(powers.production, 0);
  const consumption = Math.max(powers.consumption, 0);
  const discharge = Math.max(powers.battery, 0);
  const charge = Math.max(-powers.battery, 0);
  const pvToHome = Math.min(production, consumption);
  const unserved = consumption - pvToHome;
  const surplus = production - pvToHome;
  const pvToBattery = Math.min(surplus, charge);
  const batteryToHome = Math.min(discharge, unserved);
  return {
    production_to_consumption: pvToHome,
    production_to_grid: surplus - pvToBattery,
    production_to_battery: pvToBattery,
    grid_to_consumption: unserved - batteryToHome,
    grid_to_battery: charge - pvToBattery,
    battery_to_consumption: batteryToHome,
    battery_to_grid: discharge - batteryToHome,
  };
}

// Net flow along a line, > 0 from its first node to its second.
function linkPower(flows, [from, to]) {
  const name = (a, b) => `${a}_to_${b}`;
  const forward = flows[name(from, to)] ?? 0;
  const backward = flows[name(to, from)] ?? 0;
  return forward - backward;
}

function formatNumber(hass, value, digits) {
  const language = hass.locale?.language || hass.language || "en";
  return new Intl.NumberFormat(language, {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  }).format(value);
}

function formatPower(hass, value) {
  if (value === null || value === undefined) return "—";
  const magnitude = Math.abs(value);
  if (magnitude < 1000) return `${formatNumber(hass, magnitude, 0)} W`;
  return `${formatNumber(hass, magnitude / 1000, magnitude < 10000 ? 2 : 1)} kW`;
}

function formatState(hass, entityId) {
  const state = entityId && hass.states[entityId];
  if (!state) return "—";
  if (typeof hass.formatEntityState === "function") return hass.formatEntityState(state);
  const unit = state.attributes.unit_of_measurement;
  return unit ? `${state.state} ${unit}` : state.state;
}

function fire(element, type, detail) {
  element.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
}

function batteryIcon(soc, charging) {
  if (soc === null) return "mdi:battery-unknown";
  const tens = Math.round(soc / 10) * 10;
  if (charging) return `mdi:battery-charging-${Math.min(Math.max(tens, 10), 100)}`;
  if (tens >= 100) return "mdi:battery";
  return tens <= 0 ? "mdi:battery-outline" : `mdi:battery-${tens}`;
}

// ---------------------------------------------------------------------------------------------
// The card
// ---------------------------------------------------------------------------------------------

const STYLE = `
  ha-card { padding: 12px 16px 16px; }
  .title {
    font-size: var(--ha-card-header-font-size, 24px);
    color: var(--ha-card-header-color, var(--primary-text-color));
    padding: 4px 0 8px;
  }
  .flow {
    position: relative; width: 100%; max-width: 460px; margin: 0 auto;
    aspect-ratio: 300 / 240;
  }
  svg { position: absolute; inset: 0; width: 100%; height: 100%; overflow: visible; }
  path {
    fill: none; stroke-width: 2; stroke-linecap: round;
    stroke: var(--divider-color, rgba(127, 127, 127, 0.3));
  }
  path.active { stroke-dasharray: 6 10; animation: ems-flow linear infinite; }
  path[hidden] { display: none; }
  @keyframes ems-flow { from { stroke-dashoffset: 32; } to { stroke-dashoffset: 0; } }
  @media (prefers-reduced-motion: reduce) {
    path.active { animation: none; stroke-dasharray: none; }
  }
  .node {
    position: absolute; transform: translate(-50%, -50%);
    width: 27%; max-width: 110px; aspect-ratio: 1; box-sizing: border-box;
    border-radius: 50%; border: 2px solid var(--ems-node-color);
    background: var(--card-background-color, var(--ha-card-background, #fff));
    color: var(--primary-text-color);
    display: flex; flex-direction: column; align-items: center; justify-content: center;
    text-align: center; cursor: pointer; font-size: 13px; line-height: 1.25;
  }
  .node[hidden] { display: none; }
  .node ha-icon { --mdc-icon-size: 22px; color: var(--ems-node-color); }
  .node .value { font-weight: 500; font-size: 14px; white-space: nowrap; }
  .node .sub {
    color: var(--secondary-text-color); font-size: 11px; max-width: 90%;
    white-space: nowrap; overflow: hidden; text-overflow: ellipsis;
  }
  .production { --ems-node-color: var(--energy-solar-color, #ff9800); }
  .grid { --ems-node-color: var(--energy-grid-consumption-color, #488fc2); }
  .consumption { --ems-node-color: var(--primary-color, #03a9f4); }
  .battery { --ems-node-color: var(--energy-battery-out-color, #4db6ac); }
  .today {
    display: grid; grid-template-columns: repeat(auto-fit, minmax(90px, 1fr)); gap: 8px 12px;
    margin-top: 12px; padding-top: 12px;
    border-top: 1px solid var(--divider-color, rgba(127, 127, 127, 0.3));
  }
  .today[hidden], .today div[hidden] { display: none; }
  .today div { cursor: pointer; }
  .today .label { color: var(--secondary-text-color); font-size: 12px; }
  .today .amount { color: var(--primary-text-color); font-size: 15px; font-weight: 500; }
  .today .heading {
    grid-column: 1 / -1; cursor: default;
    color: var(--secondary-text-color); font-size: 12px;
    text-transform: uppercase; letter-spacing: 0.05em;
  }
  .warning { color: var(--secondary-text-color); padding: 8px 0; }
  .modes { display: flex; flex-wrap: wrap; gap: 6px; justify-content: center; margin-top: 8px; }
  .modes[hidden] { display: none; }
  .modes button {
    font: inherit; font-size: 12px; cursor: pointer; padding: 4px 10px; border-radius: 14px;
    color: var(--primary-text-color); background: none;
    border: 1px solid var(--divider-color, rgba(127, 127, 127, 0.4));
  }
  .modes button[aria-pressed="true"] {
    color: var(--text-primary-color, #fff); background: var(--primary-color, #03a9f4);
    border-color: var(--primary-color, #03a9f4);
  }
`;

class EmsSiteCard extends HTMLElement {
  static getConfigElement() {
    return document.createElement(EDITOR_TYPE);
  }

  static getStubConfig() {
    // The card finds the site by itself; a second hub can be picked in the editor.
    return {};
  }

  // Exposed for tests and for anyone scripting around the card.
  static discoverEntities(hass, config) {
    return discoverEntities(hass, config || {});
  }

  static siteFlows(hass, entities) {
    return siteFlows(hass, entities, sitePowers(hass, entities));
  }

  setConfig(config) {
    if (!config || typeof config !== "object") throw new Error("Invalid configuration");
    const entities = config.entities ?? {};
    if (typeof entities !== "object" || Array.isArray(entities)) {
      throw new Error("entities: a mapping of role to entity id, e.g. grid_power: sensor.grid");
    }
    const unknown = Object.keys(entities).filter((role) => !ROLES.includes(role));
    if (unknown.length) throw new Error(`Unknown entity role: ${unknown.join(", ")}`);
    this._config = config;
    this._entities = null;
    this._seen = null;
    if (this._hass) this._update();
  }

  set hass(hass) {
    this._hass = hass;
    if (this._config) this._update();
  }

  getCardSize() {
    return 7;
  }

  getGridOptions() {
    // No fixed rows: the drawing keeps its aspect ratio, so the height follows the width.
    return { columns: 12, min_columns: 6 };
  }

  _update() {
    const hass = this._hass;
    // The registries change rarely; the lookup is redone only when they do.
    const [entities, devices] = this._registries || [];
    if (!this._entities || entities !== hass.entities || devices !== hass.devices) {
      this._entities = discoverEntities(hass, this._config);
      this._registries = [hass.entities, hass.devices];
      this._seen = null;
    }
    const watched = Object.values(this._entities).map((id) => hass.states[id]);
    const seen = this._seen;
    if (seen && watched.length === seen.length && watched.every((s, i) => s === seen[i])) return;
    this._seen = watched;
    if (!this.shadowRoot) this._build();
    this._render();
  }

  _build() {
    const root = this.attachShadow({ mode: "open" });
    const nodes = Object.entries(NODES)
      .map(
        ([name, node]) => `
        <div class="node ${name}" data-node="${name}"
             style="left:${(node.x / 3).toFixed(2)}%;top:${(node.y / 2.4).toFixed(2)}%">
          <ha-icon icon="${node.icon}"></ha-icon>
          <span class="value">—</span>
          <span class="sub">${node.label}</span>
        </div>`,
      )
      .join("");
    const links = LINKS.map(
      (link, index) => `<path data-link="${index}"><title></title></path>`,
    ).join("");
    const today = TODAY.map(
      ([role, label]) => `
        <div data-role="${role}" hidden>
          <div class="label">${label}</div><div class="amount"></div>
        </div>`,
    ).join("");
    root.innerHTML = `
      <style>${STYLE}</style>
      <ha-card>
        <div class="title" hidden></div>
        <div class="warning" hidden></div>
        <div class="flow">
          <svg viewBox="0 0 300 240" aria-hidden="true">${links}</svg>
          ${nodes}
        </div>
        <div class="modes" role="group" aria-label="Battery mode" hidden></div>
        <div class="today" hidden><div class="heading">Today</div>${today}</div>
      </ha-card>`;
    root.addEventListener("click", (event) => this._click(event));
  }

  _render() {
    const hass = this._hass;
    const root = this.shadowRoot;
    const entities = this._entities;
    const title = root.querySelector(".title");
    title.hidden = !this._config.title;
    title.textContent = this._config.title || "";

    const warning = root.querySelector(".warning");
    const missing = !entities.grid_power && !entities.consumption_power;
    warning.hidden = !missing;
    warning.textContent = missing
      ? "No ems site found. Add the ems integration, or set the card's entities (see docs/card.md)."
      : "";

    const powers = sitePowers(hass, entities);
    const flows = siteFlows(hass, entities, powers) || {};
    const shown = {
      production: Boolean(entities.production_power),
      grid: Boolean(entities.grid_power),
      consumption: Boolean(entities.consumption_power) || powers.consumption !== null,
      battery: Boolean(entities.battery_power || entities.battery_soc),
    };
    this._renderNodes(powers, shown);
    LINKS.forEach((link, index) => this._renderLink(root, index, link, flows, shown));
    this._renderModes(root);
    this._renderToday(root);
  }

  // One button per mode of the battery's mode select: the mode a user picks most often is one
  // tap away, and the pressed one shows what ems has been told.
  _renderModes(root) {
    const box = root.querySelector(".modes");
    const entityId = this._entities.battery_mode;
    const state = entityId && entityId.startsWith("select.") ? this._hass.states[entityId] : null;
    const options = (state && state.attributes.options) || [];
    box.hidden = !options.length || this._config.show_modes === false;
    if (box.hidden) return;
    if (box.dataset.options !== options.join(",")) {
      box.dataset.options = options.join(",");
      box.replaceChildren(
        ...options.map((option) => {
          const button = document.createElement("button");
          button.type = "button";
          button.dataset.mode = option;
          return button;
        }),
      );
    }
    for (const button of box.children) {
      const option = button.dataset.mode;
      button.textContent = this._hass.formatEntityState
        ? this._hass.formatEntityState(state, option)
        : option;
      button.setAttribute("aria-pressed", String(state.state === option));
    }
  }

  _renderNodes(powers, shown) {
    const hass = this._hass;
    const root = this.shadowRoot;
    const entities = this._entities;
    const soc = numberOf(hass, entities.battery_soc);
    const mode = entities.battery_mode ? formatState(hass, entities.battery_mode) : null;
    const socText = soc === null ? null : `${formatNumber(hass, soc, 0)} %`;
    let gridText = NODES.grid.label;
    if (powers.grid !== null && Math.abs(powers.grid) >= IDLE_W) {
      gridText = powers.grid > 0 ? "Importing" : "Exporting";
    }
    const subtitle = {
      production: NODES.production.label,
      consumption: NODES.consumption.label,
      grid: gridText,
      battery: [socText, mode].filter(Boolean).join(" · ") || NODES.battery.label,
    };
    for (const name of Object.keys(NODES)) {
      const node = root.querySelector(`[data-node="${name}"]`);
      node.hidden = !shown[name];
      node.querySelector(".value").textContent = formatPower(hass, powers[name]);
      node.querySelector(".sub").textContent = subtitle[name];
      const label = NODES[name].label;
      node.title = subtitle[name] === label ? label : `${label}: ${subtitle[name]}`;
    }
    const battery = powers.battery;
    root
      .querySelector('[data-node="battery"] ha-icon')
      .setAttribute("icon", batteryIcon(soc, battery !== null && battery < -IDLE_W));
    root.querySelector('[data-node="grid"]').style.setProperty(
      "--ems-node-color",
      powers.grid !== null && powers.grid < -IDLE_W
        ? "var(--energy-grid-return-color, #8353d1)"
        : "var(--energy-grid-consumption-color, #488fc2)",
    );
  }

  _renderLink(root, index, link, flows, shown) {
    const path = root.querySelector(`[data-link="${index}"]`);
    const [a, b] = link;
    // SVG elements have no `hidden` property; the attribute and the style sheet do it.
    path.toggleAttribute("hidden", !shown[a] || !shown[b]);
    const power = linkPower(flows, link);
    const active = Math.abs(power) >= IDLE_W;
    // The line is drawn from source to sink so that the dashes move with the energy.
    const [from, to] = power < 0 ? [b, a] : [a, b];
    const d = `M ${NODES[from].x} ${NODES[from].y} L ${NODES[to].x} ${NODES[to].y}`;
    if (path.getAttribute("d") !== d) path.setAttribute("d", d);
    path.classList.toggle("active", active);
    path.style.stroke = active ? SOURCE_COLOR[from] : "";
    // Faster with more power: 4 s per lap near zero, 0.5 s at 10 kW and above.
    const decades = Math.log10(Math.max(Math.abs(power), 1));
    const seconds = Math.max(0.5, Math.min(4, 4 - decades * 0.875));
    const duration = `${seconds.toFixed(1)}s`;
    if (path.style.animationDuration !== duration) path.style.animationDuration = duration;
    path.querySelector("title").textContent = active
      ? `${NODES[from].label} → ${NODES[to].label}: ${formatPower(this._hass, power)}`
      : "";
  }

  _renderToday(root) {
    const hass = this._hass;
    const entities = this._entities;
    let any = false;
    for (const [role] of TODAY) {
      const cell = root.querySelector(`[data-role="${role}"]`);
      const entityId = entities[role];
      cell.hidden = !entityId || !hass.states[entityId];
      any ||= !cell.hidden;
      if (!cell.hidden) cell.querySelector(".amount").textContent = formatState(hass, entityId);
    }
    root.querySelector(".today").hidden = !any || this._config.show_today === false;
  }

  _click(event) {
    const path = event.composedPath();
    const button = path.find((el) => el.dataset && el.dataset.mode);
    if (button) {
      this._hass.callService("select", "select_option", {
        entity_id: this._entities.battery_mode,
        option: button.dataset.mode,
      });
      return;
    }
    const target = path.find((el) => el.dataset && (el.dataset.node || el.dataset.role));
    if (!target) return;
    const entities = this._entities;
    const { node, role } = target.dataset;
    // The battery opens its mode: that is where a user changes what it does.
    const entityId = role
      ? entities[role]
      : node === "battery"
        ? entities.battery_mode || entities.battery_power || entities.battery_soc
        : entities[`${node}_power`];
    if (entityId) fire(this, "hass-more-info", { entityId });
  }
}

// ---------------------------------------------------------------------------------------------
// The visual editor: Home Assistant's own form element with a schema
// ---------------------------------------------------------------------------------------------

const ROLE_LABELS = {
  battery_soc: "Battery state of charge",
  battery_mode: "Battery mode",
};

function roleLabel(role) {
  if (ROLE_LABELS[role]) return ROLE_LABELS[role];
  const text = role.replace(/_power$/, " power").replace(/_today$/, " today").replace(/_/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

const EDITOR_SCHEMA = [
  { name: "title", selector: { text: {} } },
  {
    name: "device_id",
    selector: { device: { filter: { integration: PLATFORM, model: SITE_MODEL } } },
  },
  { name: "show_today", selector: { boolean: {} } },
  { name: "show_modes", selector: { boolean: {} } },
  {
    name: "entities",
    type: "expandable",
    title: "Entities (override what the card finds)",
    schema: ROLES.map((role) => ({
      name: role,
      selector: {
        entity: { filter: { domain: role === "battery_mode" ? ["select", "sensor"] : "sensor" } },
      },
    })),
  },
];

const EDITOR_LABELS = {
  title: "Title",
  device_id: "Site (leave empty for the first ems site)",
  show_today: "Show today's energy, cost and CO₂",
  show_modes: "Show the battery's mode buttons",
};

class EmsSiteCardEditor extends HTMLElement {
  setConfig(config) {
    this._config = config;
    this._render();
  }

  set hass(hass) {
    this._hass = hass;
    if (this._form) this._form.hass = hass;
  }

  _render() {
    if (!this._form) {
      this._form = document.createElement("ha-form");
      this._form.schema = EDITOR_SCHEMA;
      this._form.computeLabel = (item) => EDITOR_LABELS[item.name] || roleLabel(item.name);
      this._form.addEventListener("value-changed", (event) => this._changed(event));
      this.appendChild(this._form);
    }
    this._form.hass = this._hass;
    this._form.data = { show_today: true, show_modes: true, ...this._config };
  }

  _changed(event) {
    event.stopPropagation();
    const config = { ...event.detail.value };
    // Empty pickers leave no trace in the YAML.
    const picked = Object.entries(config.entities || {}).filter(([, id]) => id);
    const entities = Object.fromEntries(picked);
    if (Object.keys(entities).length) config.entities = entities;
    else delete config.entities;
    for (const key of ["title", "device_id"]) if (!config[key]) delete config[key];
    for (const key of ["show_today", "show_modes"]) if (config[key] !== false) delete config[key];
    this._config = config;
    fire(this, "config-changed", { config });
  }
}

if (!customElements.get(CARD_TYPE)) customElements.define(CARD_TYPE, EmsSiteCard);
if (!customElements.get(EDITOR_TYPE)) customElements.define(EDITOR_TYPE, EmsSiteCardEditor);

window.customCards = window.customCards || [];
if (!window.customCards.some((card) => card.type === CARD_TYPE)) {
  window.customCards.push({
    type: CARD_TYPE,
    name: "EMS site",
    description:
      "Power flow between grid, PV, battery and home, with today's energy, cost and CO₂.",
    preview: true,
    documentationURL: "https://github.com/ems-dev/ems/blob/main/docs/card.md",
  });
}
