"""Every alert rule, in the order Grafana lists them: the importer's own, then the SLO rules."""

from __future__ import annotations

from typing import Final

from mnemo_otel.grafana import slo, spec
from mnemo_otel.grafana.spec import AlertSpec

__all__ = ("ALL_RULES",)

ALL_RULES: Final[tuple[AlertSpec, ...]] = (*spec.RULES, *slo.RULES)
