from __future__ import annotations

import sys

# Absolute, and guarded: worker processes (verify's keying) load this module again as ``__mp_main__``.
from mnemo_otel.cli import main

if __name__ == "__main__":
    sys.exit(main())
