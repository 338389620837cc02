"""``python -m astro_assets.backtest``: the command ``astro-backtest`` (``astro_assets.cli.backtest``) by the name
the issues and the README use."""

import sys

from astro_assets.cli.backtest import main

if __name__ == "__main__":
    sys.exit(main())
