"""An HTTP session for the OTLP/HTTP exporters in which the collector's CA file really is the one used.

The exporters hand ``OTEL_EXPORTER_OTLP_[SIGNAL_]CERTIFICATE`` to a ``requests`` session, but
``requests`` lets ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` (set system-wide on many machines)
override a session's CA file on every request: the gateway's private CA would be silently ignored and
every export would fail verification. A CA file given for OTLP wins here; without one, the
environment's bundle applies as usual (proxies and the rest of the environment are untouched).
"""

from __future__ import annotations

from typing import Any

import requests

__all__ = ("PinnedCaSession",)


class PinnedCaSession(requests.Session):
    def merge_environment_settings(
        self,
        url: str,
        proxies: dict[str, str] | None,
        stream: bool | None,
        verify: bool | str | None,
        cert: Any,
    ) -> dict[str, Any]:
        settings: dict[str, Any] = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if isinstance(self.verify, str):
            settings["verify"] = self.verify
        return settings
