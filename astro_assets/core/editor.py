"""The Google Ads Editor file format, and reading a file back as Editor reads it.

The format, from Google's Ads Editor help, "Import a CSV file in Google Ads Editor — CSV file
columns" (https://support.google.com/google-ads/editor/answer/57747) and its format guidelines
(https://support.google.com/google-ads/editor/topic/2986631): the first row is the header; one item
(here a keyword) per row; a blank field means "make no change". Files are UTF-16 little-endian with a
byte-order mark and tab-separated, as Editor's own exports are. ``stages.bids`` writes the files; the
bid-file checks read them back here, inside Spark tasks (``core.audit.audit_editor_file``): codecs,
csv and pyarrow only.
"""

import codecs
import csv
import io

import pyarrow as pa
from pyarrow import csv as pacsv

from astro_assets.core.bid_rule import ENABLED, PAUSED

#: Google Ads Editor column names (one keyword per row).
EDITOR_COLUMNS = (
    "Campaign ID",
    "Campaign",
    "Ad group ID",
    "Ad group",
    "Keyword ID",
    "Keyword",
    "Criterion Type",
    "Max CPC",
    "Status",
)
#: Editor's spelling of match types and of keyword statuses.
EDITOR_MATCH_TYPES = {"EXACT": "Exact", "PHRASE": "Phrase", "BROAD": "Broad"}
EDITOR_STATUSES = {ENABLED: "Enabled", PAUSED: "Paused"}
#: Editor's own exports: UTF-16 little-endian with a byte-order mark, tab-separated.
EDITOR_BOM = codecs.BOM_UTF16_LE
EDITOR_ENCODING = "utf-16-le"
EDITOR_SEPARATOR = "\t"


def read_editor_file(data: bytes, name: str = "Editor file") -> pa.Table:
    """An Editor file read back as Editor reads it: the byte-order mark, UTF-16, tab-separated, the
    header row, quoted fields, every field a string (a blank field an empty string). Raises
    ``ValueError`` naming the file when it is not UTF-16 with a byte-order mark or a row does not have
    the header's fields."""
    if not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ValueError(f"{name}: no UTF-16 byte-order mark; Editor files are UTF-16 with one")
    text = data.decode("utf-16")  # the byte-order mark decides the byte order, and is dropped
    header = next(csv.reader(io.StringIO(text.split("\n", 1)[0]), delimiter=EDITOR_SEPARATOR), [])
    if not header:
        raise ValueError(f"{name}: empty, not even a header row")
    try:
        return pacsv.read_csv(
            io.BytesIO(text.encode("utf-8")),
            parse_options=pacsv.ParseOptions(delimiter=EDITOR_SEPARATOR, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={column: pa.string() for column in header},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as error:
        raise ValueError(f"{name}: not a well-formed tab-separated file: {error}") from None
