"""``python -m ngp_app`` runs the ``ngp`` command line."""

import sys

from .cli import main

sys.exit(main())
