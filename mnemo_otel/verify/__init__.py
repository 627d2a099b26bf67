"""Zero loss, observed: re-read the transcripts, key every line as the importer does, and check the
archive holds each one (``mnemo-otel verify``, and the daemon's periodic scrub).

Nothing is imported here on purpose: the keying worker processes import ``verify.segments`` and
must not pay for the database driver. ``run.run_verify`` is the entry point.
"""
