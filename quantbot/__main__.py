import sys

from quantbot.cli import main

sys.exit(main())
