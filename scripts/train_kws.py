#!/usr/bin/env python3
"""Train the chatterbox keyword model (see models/README.md for the exact command).

Run with the venv made by scripts/setup-train-venv.sh:
    ~/.cache/chatterbox/venv-train/bin/python scripts/train_kws.py --help
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kws.pipeline import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
