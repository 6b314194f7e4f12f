"""The books: energy counters into local-time hours, days and months, with 15-minute demand,
peak power, cost and CO2 (MyEMS's aggregation step, done the utility's way), and the ledger
that keeps the site's hours.

Modules, in the order the data takes: `periods` (the grid of local hours), `counters` (a
counter's energy, demand and peak per hour), `aggregates` (priced hours, rolled up to days
and months), `bills` (fees, demand charges, money), `accounting` (all of it for a set of
series) and `ledger` (the site's minute samples and settled hours).

Pure: plain data in, plain data out; nothing here imports Home Assistant or reads a clock.
Timestamps are epoch seconds (UTC by definition), energies kWh, powers kW on the way out,
CO2 kg, money in the tariff's currency. The caller passes HA's time zone as a `tzinfo`.

How the numbers are made, and why:

- Hours are the local wall-clock hours of the time zone (`local_hours`). A bucket never spans a
  change of UTC offset, so Europe/Berlin's spring-forward day has 23 buckets and its fall-back
  day 25 (two buckets start at 02:00, told apart by their UTC offset). Zones with 30- or
  45-minute offsets work the same way; offsets must be whole quarter hours (every zone today).
- A counter's energy in an interval is the counter, interpolated linearly between the samples
  around each end, at the end minus at the start. So the energy between two samples is shared
  among the hours they span in proportion to time: after an outage the counter's jump is spread
  evenly over the missing hours (never a zero hour and then a spike), and every hour the outage
  touches is flagged `estimated`. Hours telescope: their sum is the counter's total increase.
  A gap is two samples more than `gap_s` (15 min) apart; a sample flagged `estimated` marks the
  interval that ends at it (an upstream estimate). A counter that goes down was reset: the drop
  is no energy. The first and last hour count only what the samples cover (`complete` False).
- Demand is the largest average power of a wall-clock quarter hour (:00, :15, :30, :45), as
  utilities bill it, from the counter's energy in that quarter; a quarter the samples do not
  cover from start to end gives none. Peak is the largest power sample in the period, or,
  without power samples, the largest average power between two counter samples that are at
  most `gap_s` apart (at the cycle's sample rate that is the instantaneous power).
- Cost and CO2 are priced per quarter hour, at the quarter's start (so time-of-use periods may
  start on any quarter hour and 15-minute spot prices work), and summed per hour. Hourly costs
  stay unrounded floats (statistics add them up); bills round each charge to the cent once,
  half up. A quarter hour with energy but no price (a dynamic series with a hole and no
  fallback) makes the hour's cost None, and so the day's, month's and bill's: unknown, not free.
- The sign of money: a bucket's `cost` is what the channel costs the site. Imports cost
  (> 0); exports are paid, so their cost is negative (-kWh x export price), and positive when
  a dynamic export price is negative.
- Fees and the demand charge are not energy: they are in the bills, not in the hourly costs.
  A per-day fee is charged once for every local day (23- and 25-hour days alike); a per-month
  fee once for every month, in full, as on a utility bill. A daily bill shows the month fee's
  share (fee / days in the month); the demand charge is charged on the monthly bill only,
  on the month's demand.
"""
