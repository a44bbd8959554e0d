import sys

from roots.cli.app import main

sys.exit(main())
