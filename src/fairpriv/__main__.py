"""``python -m fairpriv`` (and ``torchrun --nproc_per_node N -m fairpriv fit dp ...``): the ``fairpriv`` command."""

import sys

from fairpriv.cli import main

if __name__ == "__main__":
    sys.exit(main())
