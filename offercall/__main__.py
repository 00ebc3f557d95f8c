"""``python -m offercall``."""

import sys

from offercall.cli import main

sys.exit(main())
