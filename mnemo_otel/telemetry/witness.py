"""The witness's instruments, on the OpenTelemetry API only: events heard, lines unarchived by host,
the archive's lag on the producer's clock, when each host was last heard."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from .._version import __version__
from . import names

__all__ = ("WitnessState", "WitnessTelemetry")

# Lag from seconds (a daemon watching) to a day (an importer that was off): where a stale archive shows.
_LAG_BUCKETS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0)


@dataclass
class WitnessState:
    """What the reconciler last read from the database; the gauges report it."""

    unarchived: dict[str, int] = field(default_factory=dict)
    last_heard: dict[str, float] = field(default_factory=dict)


class WitnessTelemetry:
    def __init__(self, state: WitnessState, meter_provider: metrics.MeterProvider | None = None) -> None:
        meter = metrics.get_meter("mnemo_otel.witness", __version__, meter_provider)
        self._state = state
        events = names.WITNESS_EVENTS
        self._events = meter.create_counter(events.name, events.unit, events.description)
        lag = names.WITNESS_LAG
        self._lag = meter.create_histogram(
            lag.name, lag.unit, lag.description, explicit_bucket_boundaries_advisory=_LAG_BUCKETS
        )
        for metric, callback in (
            (names.WITNESS_UNARCHIVED, self._unarchived),
            (names.WITNESS_LAST_HEARD, self._last_heard),
        ):
            meter.create_observable_gauge(metric.name, [callback], metric.unit, metric.description)

    def heard(self, events: Mapping[str, int]) -> None:
        for name, count in events.items():
            self._events.add(count, {names.ATTR_EVENT_NAME: name})

    def archived(self, lags: Iterable[tuple[str, float]]) -> None:
        for host, seconds in lags:
            self._lag.record(max(0.0, seconds), {names.ATTR_WITNESS_HOST: _host(host)})

    def _unarchived(self, options: CallbackOptions) -> Iterable[Observation]:
        for host, lines in self._state.unarchived.items():
            yield Observation(lines, {names.ATTR_WITNESS_HOST: _host(host)})

    def _last_heard(self, options: CallbackOptions) -> Iterable[Observation]:
        for host, stamp in self._state.last_heard.items():
            yield Observation(stamp, {names.ATTR_WITNESS_HOST: _host(host)})


def _host(host: str) -> str:
    return host or names.WITNESS_UNKNOWN_HOST
