"""``python -m napari_thinseg`` is the ``thinseg`` command."""

import sys

from .cli import main

sys.exit(main())
