"""``python -m latentprior.cli`` (what ``torchrun -m latentprior.cli`` runs in each process)."""

import sys

from latentprior.cli import main

__all__: list[str] = []

sys.exit(main())
