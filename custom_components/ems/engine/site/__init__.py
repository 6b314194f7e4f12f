"""The site model: OpenEMS's `_sum` over the devices (`powers`), the energy flows between PV,
battery, grid and house (`flows`), their integration into kWh (`integration`), the site's
series advanced by the devices' own counters where they have them (`metered`), and the load
parameters of metered consumers (`loads`).

Plain data in, plain data out; nothing here reads a clock. All powers are in W and all
energies in kWh (DESIGN.md §3), timestamps are epoch seconds. Signs follow OpenEMS:
grid > 0 imports (buys); battery > 0 discharges; production >= 0;
consumption = grid + production + battery.
"""
