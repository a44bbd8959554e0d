"""roots: a builder for multilingual LLM pretraining corpora with provenance, after BigScience ROOTS."""

import os

# Arrow's C++ Parquet reads allocate from the default pool chosen when pyarrow is imported; its default
# (mimalloc) keeps freed pages, so a process that streamed a large file batch by batch still looked as big
# as the file. The system allocator hands them back. Set before any pyarrow import, and only when the user
# did not choose a pool (`outputs.bounded_arrow_memory` covers a pyarrow imported before roots).
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

__version__ = "0.1.0"
