"""The ``astro_assets`` code location that ``dagster dev`` loads (``workspace.yaml``): the definitions
built from the settings in the environment, read once, here."""

from astro_assets.defs import build_definitions
from astro_assets.settings import load_settings

defs = build_definitions(load_settings())
