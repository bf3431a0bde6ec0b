"""``python -m shaman_addon``: the command line, no Blender needed."""

import gc
import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while the command line is still being imported
    print("cancelled", file=sys.stderr)
    sys.exit(130)

code = main()
# The interpreter's last collection would walk every object still held (0.4-0.5 s after
# a 100,000-file submission) to free memory the exit frees anyway.
gc.freeze()
sys.exit(code)
