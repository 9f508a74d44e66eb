"""`python -m music_pipeline` is `music-pipeline`."""

import sys

from .cli import main

sys.exit(main())
