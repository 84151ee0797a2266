"""VoIPstudio call detail records into DuckDB (or any dlt destination): the dlt source, the sync,
the reporting models, the emulator and the benchmark."""

import os

# pyarrow takes its allocator from this variable once, when it is first imported, and its
# default here (mimalloc) keeps what a sync's pages were decoded in: see
# `pipelines.voipstudio.memory.sync_memory`. A value of the user's wins.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
