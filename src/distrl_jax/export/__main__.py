"""``python -m distrl_jax.export``: see :mod:`distrl_jax.export.cli`."""

import sys

from distrl_jax.export.cli import main

sys.exit(main())
