"""Damage a Parquet file the way a bad disk block does: bytes zeroed inside one column's pages."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq


def damage_column(path: Path, column: str, length: int = 16) -> None:
    """Zero `length` bytes inside `column`'s values; the other columns stay readable.

    The values live in the dictionary page when there is one, else in the data pages; the
    page headers carry min/max statistics no reader needs, so the bytes hit go near the end of
    the values' region, past any header."""
    group = pq.ParquetFile(path).metadata.row_group(0)
    chunk = next(
        c for c in (group.column(i) for i in range(group.num_columns)) if c.path_in_schema == column
    )
    if chunk.has_dictionary_page:
        first, end = chunk.dictionary_page_offset, chunk.data_page_offset
    else:
        first, end = chunk.data_page_offset, chunk.data_page_offset + chunk.total_compressed_size
    start = first + (end - first) * 3 // 4
    data = bytearray(Path(path).read_bytes())
    data[start : start + length] = bytes(length)
    Path(path).write_bytes(bytes(data))
