"""Alert rules that were shipped once and are gone from the spec: Grafana must forget them.

Grafana (13.2) provisions file rules by uid and never deletes one that simply vanished from the
file: it stays, evaluating and notifying, as a read-only provisioned rule. A ``deleteRules`` entry
removes it (and deleting a uid that does not exist is a no-op), so every uid that ever left the spec
is listed here for good. A test compares this list with every uid the repository's history shipped.
"""

from __future__ import annotations

from typing import Final

__all__ = ("RETIRED_RULE_UIDS",)

RETIRED_RULE_UIDS: Final[tuple[str, ...]] = ()
"""Uids of rules removed from the spec (``rules.ALL_RULES``); never reuse one for a new rule."""
