"""``python -m flowtel doctor`` / ``python -m flowtel reference``: see :mod:`flowtel.cli`."""

import sys

from flowtel.cli import main

sys.exit(main())
