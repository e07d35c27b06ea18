"""The alert condition engine: which alerts a tick makes fire, in memory, with no database and
no gRPC. Two implementations of one interface (`ConditionEngine`): `AlertIndex`, the indexed
engine the monitor runs, whose tick costs O(channels * log n + candidates) however many alerts
a symbol has, and `BruteForceEngine`, a plain scan of every alert that is the reference in the
property tests and the baseline in the benchmark.

Contract (both engines):

- The engine holds the ACTIVE alerts: `replace_all` at start, then `add` (Create, Enable),
  `update` (Update: the crossing side survives unless the symbol or condition changed) and
  `remove` (Delete, Disable, and an alert another replica completed) as the changes arrive.
- `evaluate(tick)` proposes; the database decides. It returns a `Candidate` for every held
  alert on the tick's symbol whose condition is met on this tick and that is eligible to fire.
  It changes no firing state: a candidate that is not then `mark_fired` (the conditional write
  lost, or failed) is proposed again on the next tick if its condition still holds.
  It does record what the tick teaches: crossing sides and the rolling windows.
- `mark_fired(alert_id, fire_time)` records a firing the database accepted, with the fire time
  it stored: a ONCE alert leaves the engine; an EVERY_TIME alert is eligible again from
  `fire_time + cooldown`; a ONCE_PER_TRADING_DAY alert from New York midnight of the next exchange
  session. `AlertSpec.last_fire_time` sets the same on `add`/`update`/`replace_all`.
- Time: the engine's clock is the latest tick time or `expire_due` time seen (it never goes
  back). Each `evaluate` and `expire_due` first advances it: alerts whose expire_time is at or
  before the clock leave (and never fire from then on), resting alerts whose eligible time has
  come are re-armed. `expire_due(now)` returns the alerts that left by expiry since its last call,
  so expiry is on time without quotes; the caller moves them to EXPIRED.

Semantics (the proto comments of optix.alert.v1.AlertCondition):

- Thresholds (price_above/below strictly, day_volume_above, implied_volatility_above/below)
  hold while the value is beyond the level: an eligible alert is a candidate on every tick
  where it holds, including the first tick after it was added.
- Crossings (price_crossing, delta_crossing) are candidates only on a transition between two
  consecutive values of that alert: UP from strictly below the level to at or above it, DOWN from
  strictly above to at or below, EITHER both. The first value after add, or a condition
  change, only records the side; a crossing during a cooldown is not a candidate, but it moves
  the side.
- Percent moves hold like thresholds on move = (price - base) / base * 100: UP when move >=
  percent, DOWN when move <= -percent, EITHER when |move| >= percent. The base is the tick's
  previous close, or for the WINDOW basis the price `window` before the tick from the rolling
  window (history.py); without history reaching back that far the condition does not hold yet.
- A tick without the value a condition reads (no implied volatility or delta, a price <= 0,
  no previous close, a non-finite number) skips that condition: nothing fires and a crossing's
  recorded side is kept.
- Eligibility: ONCE while held; EVERY_TIME when the clock is at or past last fire + cooldown;
  ONCE_PER_TRADING_DAY when the clock's trading day is after the last fire's. A trading day is an
  exchange session (common/exchange_calendar.py): an instant counts toward its New York date if
  that is a session, else toward the session before, so a weekend or holiday is not a new day
  (fired on Friday, an alert fires again from Monday, or Tuesday after a Monday holiday).

Ticks are expected in time order per symbol; an older tick is still evaluated (eligibility uses
the clock), but does not enter the rolling window."""

from __future__ import annotations

from optix_server.alert.engine.brute import BruteForceEngine
from optix_server.alert.engine.index import AlertIndex
from optix_server.alert.engine.spec import AlertSpec, Candidate, ConditionEngine

__all__ = ["AlertIndex", "AlertSpec", "BruteForceEngine", "Candidate", "ConditionEngine"]
