"""``python -m sampan.cli``."""

import sys

from sampan.cli.main import main

sys.exit(main())
