import sys

from ilp.cli import main

sys.exit(main())
