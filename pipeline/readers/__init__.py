"""Read a delivery into an Arrow table typed by its contract (docs/formats.md §2).

Formats: CSV, Parquet, SAS XPORT (.xpt), CDISC Dataset-JSON 1.1 (one JSON document, or
the NDJSON variant whose first line is the metadata and each further line a row array),
and NDJSON of one JSON object per line. Each has its module here; ``detect`` chooses one,
and ``conform`` (with ``convert``) types what it read by the contract.

The same data gives the same typed table whatever the format. Strings lose trailing
spaces (XPORT pads them) and the contract's missing values become null; numbers given
as text may carry spaces, and "", "." and "NA" are missing in non-string columns; an
integral float is an integer; SAS numeric dates count days, and datetimes seconds, from
1960-01-01. A value that does not fit its column's type becomes null and is listed in
``Delivery.type_errors``: the validation step reports it, the reader does not raise.
A file that cannot be read at all raises :class:`ReadError` starting with its path.
"""

from __future__ import annotations

__all__ = ["ARROW_TYPES", "FORMATS", "Delivery", "TypeIssue", "read_delivery"]

from pipeline.readers.conform import Delivery, TypeIssue
from pipeline.readers.convert import ARROW_TYPES
from pipeline.readers.detect import FORMATS, read_delivery
