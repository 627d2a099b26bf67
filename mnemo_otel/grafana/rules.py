"""Every alert rule, in the order Grafana lists them: the importer's own, the pipeline's, the SLO rules, the archive's, the witness's."""

from __future__ import annotations

from typing import Final

from mnemo_otel.grafana import archive, pipeline, slo, spec, witness
from mnemo_otel.grafana.spec import AlertSpec

__all__ = ("ALL_RULES",)

ALL_RULES: Final[tuple[AlertSpec, ...]] = (
    *spec.RULES,
    *pipeline.RULES,
    *slo.RULES,
    *archive.RULES,
    *witness.RULES,
)
