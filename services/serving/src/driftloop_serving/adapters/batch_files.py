"""The files of batch scoring: a Parquet or CSV input read a chunk at a time, an output
written a chunk at a time and put in place only when every row is written.

The input is never held whole: Parquet through ``ParquetFile.iter_batches``, CSV through
pyarrow's streaming reader (``open_csv``), every column read as text, typed by the
model's signature afterwards, so a value that does not fit is an error naming its column
and row rather than a reader's type guess. The output goes to a temporary file beside
the target (``.<name>.<random>.part``), renamed over it by :meth:`TableSink.commit`;
:meth:`TableSink.abort` deletes it, so a failed run leaves no half-written output.

Paths are local paths or ``file://`` URIs, or any other URI fsspec opens (``s3://`` ...,
with its package installed); the format is the file's suffix (``.parquet``/``.pq``,
``.csv``).
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

import fsspec  # type: ignore[import-untyped]
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from driftloop_serving.domain.batch import BatchInputError

__all__ = ["TableSink", "TableSource", "file_format"]

_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
#: Bytes of CSV read per block; a chunk is at most ``chunk_rows`` rows of blocks.
_CSV_BLOCK = 4 << 20


def file_format(uri: str) -> str:
    """``parquet`` or ``csv``, by the file's suffix.

    Raises:
        BatchInputError: Another suffix.
    """
    suffix = PurePosixPath(uri.split("?", 1)[0]).suffix.lower()
    found = _FORMATS.get(suffix)
    if found is None:
        raise BatchInputError(
            f"{uri!r}: batch scoring reads and writes .parquet and .csv files, not {suffix!r}"
        )
    return found


class TableSource:
    """A Parquet or CSV file read in chunks of at most ``chunk_rows`` rows.

    Attributes:
        columns: The file's column names, in order.
        text: The values are text to be typed (CSV).

    Raises:
        BatchInputError: The file cannot be opened or read as its format.
    """

    def __init__(self, uri: str, *, chunk_rows: int) -> None:
        self.uri = uri
        self.format = file_format(uri)
        self.chunk_rows = chunk_rows
        self.text = self.format == "csv"
        self._fs, self._path = fsspec.core.url_to_fs(uri)
        try:
            self._handle = self._fs.open(self._path, "rb")
        except (OSError, ValueError) as error:
            raise BatchInputError(f"cannot open the input {uri!r}: {error}") from None
        try:
            self.columns = self._columns()
        except BaseException:
            self._handle.close()
            raise

    def _columns(self) -> list[str]:
        if self.format == "parquet":
            try:
                self._parquet = pq.ParquetFile(self._handle)
            except (pa.ArrowException, OSError) as error:
                raise BatchInputError(f"{self.uri!r} is not a Parquet file: {error}") from None
            return list(self._parquet.schema_arrow.names)
        header = self._handle.readline()
        self._handle.seek(0)
        try:
            names = next(csv.reader(io.StringIO(header.decode("utf-8-sig"))), [])
        except (UnicodeDecodeError, csv.Error) as error:
            raise BatchInputError(f"{self.uri!r}: the header line is not CSV: {error}") from None
        if not names:
            raise BatchInputError(f"{self.uri!r} is empty: a CSV input needs a header line")
        return names

    def __iter__(self) -> Iterator[Any]:
        """The file's chunks (Arrow record batches), first to last."""
        if self.format == "parquet":
            try:
                yield from self._parquet.iter_batches(batch_size=self.chunk_rows)
            except (pa.ArrowException, OSError) as error:
                raise BatchInputError(f"{self.uri!r} cannot be read: {error}") from None
            return
        yield from self._csv_chunks()

    def _csv_chunks(self) -> Iterator[Any]:
        try:
            reader = pacsv.open_csv(
                self._handle,
                read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK, encoding="utf8"),
                convert_options=pacsv.ConvertOptions(
                    column_types={name: pa.string() for name in self.columns},
                    strings_can_be_null=True,
                ),
            )
            pending: list[Any] = []
            held = 0
            for block in reader:
                start = 0
                while start < block.num_rows:
                    take = min(self.chunk_rows - held, block.num_rows - start)
                    pending.append(block.slice(start, take))
                    held += take
                    start += take
                    if held == self.chunk_rows:
                        yield _joined(pending)
                        pending, held = [], 0
            if held:
                yield _joined(pending)
        except pa.ArrowInvalid as error:
            raise BatchInputError(f"{self.uri!r} is not valid CSV: {error}") from None

    def close(self) -> None:
        """Close the file."""
        self._handle.close()


def _joined(blocks: list[Any]) -> Any:
    if len(blocks) == 1:
        return blocks[0]
    return pa.Table.from_batches(blocks).combine_chunks().to_batches()[0]


class TableSink:
    """The output file, written a chunk at a time to a temporary file beside it.

    Raises:
        BatchInputError: The output's folder does not exist.
    """

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.format = file_format(uri)
        self._fs, self._path = fsspec.core.url_to_fs(uri)
        parent = self._fs._parent(self._path)
        if parent and not self._fs.isdir(parent):
            raise BatchInputError(f"the output's folder {parent!r} does not exist")
        name = PurePosixPath(self._path).name
        self._temp = (
            f"{parent}/.{name}.{uuid.uuid4().hex[:12]}.part"
            if parent
            else (f".{name}.{uuid.uuid4().hex[:12]}.part")
        )
        self._handle: Any = None
        self._writer: Any = None
        self._schema: Any = None
        self.rows = 0

    def write(self, table: Any) -> None:
        """Append the chunk's output rows (the first chunk fixes the columns' types)."""
        if self._writer is None:
            self._schema = table.schema
            self._handle = self._fs.open(self._temp, "wb")
            if self.format == "parquet":
                self._writer = pq.ParquetWriter(self._handle, self._schema)
            else:
                self._writer = pacsv.CSVWriter(self._handle, self._schema)
        elif table.schema != self._schema:
            try:
                table = table.cast(self._schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
                raise BatchInputError(
                    f"the output of rows from {self.rows} has other types than the rows "
                    f"before ({error})"
                ) from None
        self._writer.write_table(table)
        self.rows += table.num_rows

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def commit(self) -> None:
        """Put the written file in place of the output (an empty input: no output)."""
        if self._schema is None:
            return
        self._close()
        self._fs.mv(self._temp, self._path)

    def abort(self) -> None:
        """Delete what was written."""
        try:
            self._close()
        finally:
            if self._fs.exists(self._temp):
                self._fs.rm(self._temp)
