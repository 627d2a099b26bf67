# The mnemo-otel importer daemon. Slim, non-root, exact dependency pins from requirements.lock
# (used as constraints: the image gets the package's runtime dependencies only, not the test tools).
# Health: `mnemo-otel health` queries the daemon's own endpoint (no curl in the image).
# /srv/grafana-alerting: where the stack's one-shot renders Grafana's alerting folder; a new named
# volume mounted there takes this directory's owner, so the non-root user can write it.

FROM python:3.11.17-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/mnemo
COPY requirements.lock pyproject.toml README.md ./
COPY mnemo_otel ./mnemo_otel
# Bytecode compiled here: the runtime image is read-only to its user and sets PYTHONDONTWRITEBYTECODE,
# so without it every start (and every `mnemo-otel health`) would compile its imports again.
RUN /opt/mnemo/bin/pip install --constraint requirements.lock . \
 && /opt/mnemo/bin/pip uninstall --yes pip \
 && /opt/mnemo/bin/python -m compileall -q /opt/mnemo/lib >/dev/null

FROM python:3.11.17-slim-bookworm
ENV PATH=/opt/mnemo/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MNEMO_DATA_DIR=/var/lib/mnemo
# uid 10001 by default; compose may run it as the transcripts' owner (MNEMO_UID) with group 0, so
# the data directory is group-0 writable rather than world-writable.
RUN groupadd --system --gid 10001 mnemo \
 && useradd --system --uid 10001 --gid mnemo --no-create-home --home-dir /var/lib/mnemo \
        --shell /usr/sbin/nologin mnemo \
 && mkdir -p /var/lib/mnemo /transcripts /srv/grafana-alerting \
 && chown 10001:0 /var/lib/mnemo /srv/grafana-alerting \
 && chmod 0770 /var/lib/mnemo \
 && chmod 0755 /srv/grafana-alerting
COPY --from=build /opt/mnemo /opt/mnemo
USER 10001:10001
WORKDIR /var/lib/mnemo
VOLUME ["/var/lib/mnemo"]
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["mnemo-otel", "health"]
ENTRYPOINT ["mnemo-otel"]
CMD ["run"]
