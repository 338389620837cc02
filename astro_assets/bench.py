"""``python -m astro_assets.bench``: the command ``astro-bench`` (``astro_assets.cli.bench``) by the name
the issues and the README use."""

import sys

from astro_assets.cli.bench import main

if __name__ == "__main__":
    sys.exit(main())
