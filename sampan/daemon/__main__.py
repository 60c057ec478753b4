"""``python -m sampan.daemon``: the same as the ``sampand`` console script."""

import sys

from sampan.daemon.main import main

sys.exit(main())
