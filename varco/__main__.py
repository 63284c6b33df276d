import sys

from varco.cli import main

sys.exit(main())
