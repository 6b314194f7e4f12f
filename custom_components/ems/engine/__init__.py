"""The engine: ems's protocol-and-energy library. Nothing in it imports Home Assistant.

The data takes this way through it, one cycle of a hub at a time:

- `model`: devices, channels, registers and readings, the plain data every stage shares;
  `numbers`: what a usable number is, and the units of time, power and energy;
- `profiles`: register maps as YAML data (and SunSpec chains) into device profiles;
- `modbus`: which blocks to read (`plan`, `schedule`), reading them with bisection and
  quarantine (`poll`) over a serialized client (`transport`), decoding words (`codec`),
  and finding what answers (`discovery`);
- `cleaning`, then `normalization`: a quality for every value, then canonical units;
- `pipeline`: a cycle's register image into cleaned device states, with counter guards;
- `site`: the site's powers, flows, integrated energies, metered totals and load parameters;
- `identities`: which device answers at each unit id;
- `control`: battery commands, the policy that resolves them, the device's write recipe and
  the runtime that writes and reads back;
- `tariffs`, then `books`: prices and CO2 rates, then hours, days, months and bills;
- `cycle`: all of the above for one cycle, returning plain data for the coordinator.
"""
