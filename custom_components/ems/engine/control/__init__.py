"""Battery control: one vendor-neutral command (`commands`), resolved every cycle into a
setpoint within the battery's limits (`policy`), mapped onto the device's control registers
by its profile's control recipe (`recipe`, over the data of engine/recipes.py), and written and
read back through the hub (`battery`).

Signs follow DESIGN.md section 3: battery power > 0 discharges and < 0 charges; grid power > 0
imports.
"""
