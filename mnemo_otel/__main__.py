from __future__ import annotations

import sys

# Guarded, and nothing imported above it: worker processes (verify's keying) load this module again
# as ``__mp_main__``, and must not pay for the command line's imports.
if __name__ == "__main__":
    from mnemo_otel.cli import main

    sys.exit(main())
