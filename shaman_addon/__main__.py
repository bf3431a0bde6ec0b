"""``python -m shaman_addon``: the command line, no Blender needed."""

import sys

from .cli import main

sys.exit(main())
