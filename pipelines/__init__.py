"""The Beam wiring of roots: the only package that imports Apache Beam (`tests/test_layers.py`).

Importing it first quiets one warning Beam logs at import time on every machine without Google Cloud's
client libraries ("apitools not found, and bigquery client libraries are not available ..."): roots never
uses BigQuery, and an operator should not read a warning on every `roots status` that says nothing about
their run. Only that message is dropped; every other warning still reaches the log.
"""

from __future__ import annotations

import logging


class _NoBigQueryNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "apitools not found" not in record.getMessage()


logging.getLogger().addFilter(_NoBigQueryNotice())
