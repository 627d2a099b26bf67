"""Transcripts announced by Claude Code's hooks: the paths discovery of the roots cannot see.

``mnemo-otel hook`` appends each announcement to a spool on local disk (``spool.py``, standard
library only, so the hook starts fast and needs no database); the daemon reads the spool, records
the announcements in ``mnemo.announcements`` (``store.py``) and imports the files through the same
per-file path as discovered ones (``tracker.py``). ``install.py`` edits Claude Code's settings.json.

Nothing is imported here: the hook loads only what it uses.
"""
