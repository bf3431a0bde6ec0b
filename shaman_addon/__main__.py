"""``python -m shaman_addon``: the command line, no Blender needed."""

import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while the command line is still being imported
    print("cancelled", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
