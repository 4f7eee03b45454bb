import sys

from nkclass.cli import main

sys.exit(main())
