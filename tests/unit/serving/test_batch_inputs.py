"""Batch scoring's pure part: model references, a file's columns matched with the
signature, a chunk's values typed, errors naming the column and the file's row; and its
files (local, in ``tmp_path``): CSV read in chunks, an output in place only when
committed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from driftloop_serving.adapters.batch_files import TableSink, TableSource
from driftloop_serving.domain.batch import (
    BatchInputError,
    ModelReference,
    chunk_inputs,
    output_columns,
    parse_reference,
    plan_chunks,
)
from driftloop_serving.domain.models import Column, Predictor
from driftloop_serving.domain.signature import Batch
from driftloop_serving.entrypoints.batch import main

pytestmark = pytest.mark.unit


def predictor(*columns: Column) -> Predictor:
    typed = any(column.type not in ("double", "float") for column in columns)
    return Predictor(flavor="sklearn", columns=columns, predict=lambda x: x, typed=typed)


FLOATS = predictor(Column("a", "double"), Column("b", "double"))
TYPED = predictor(Column("city", "string"), Column("visits", "long"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("iris", ModelReference("iris", alias="champion")),
        ("iris@challenger", ModelReference("iris", alias="challenger")),
        ("iris/3", ModelReference("iris", version=3)),
        ("models:/iris@champion", ModelReference("iris", alias="champion")),
        ("models:/iris/12", ModelReference("iris", version=12)),
    ],
)
def test_a_reference_names_a_version_by_alias_or_number_as_mlflow_does(
    text: str, expected: ModelReference
) -> None:
    assert parse_reference(text) == expected


@pytest.mark.parametrize("text", ["", "iris/zero", "iris/0", "../etc@x", "iris@a b"])
def test_a_reference_that_names_no_version_is_refused(text: str) -> None:
    with pytest.raises(BatchInputError):
        parse_reference(text)


def test_columns_go_to_the_model_in_the_signatures_order_and_kept_ones_do_not() -> None:
    plan = plan_chunks(["id", "b", "a"], FLOATS, keep=["id"])

    assert plan.model_columns == ("a", "b")
    assert plan.keep == ("id",)


def test_a_column_the_model_does_not_take_is_named_with_the_way_to_keep_it() -> None:
    with pytest.raises(BatchInputError, match=r"column 'id' .*\(--keep id\)"):
        plan_chunks(["id", "a", "b"], FLOATS)


def test_a_missing_required_column_is_named() -> None:
    with pytest.raises(BatchInputError, match=r"missing column.*'b'"):
        plan_chunks(["a"], FLOATS)


def test_a_null_in_a_number_column_names_the_files_row_not_the_chunks() -> None:
    chunk = pa.record_batch({"a": [1.0, None], "b": [2.0, 3.0]})
    plan = plan_chunks(["a", "b"], FLOATS)

    with pytest.raises(BatchInputError, match="column 'a', row 1001: null"):
        chunk_inputs(chunk, plan, FLOATS, first_row=1000)


def test_text_of_numbers_becomes_the_float_matrix_of_the_fast_path() -> None:
    chunk = pa.record_batch({"a": ["1.5", "2"], "b": ["3", "4e1"]})
    found = chunk_inputs(chunk, plan_chunks(["a", "b"], FLOATS), FLOATS, first_row=0, text=True)

    assert isinstance(found, np.ndarray)
    np.testing.assert_array_equal(found, [[1.5, 3.0], [2.0, 40.0]])


def test_a_typed_model_gets_a_batch_typed_by_its_signature() -> None:
    chunk = pa.record_batch({"city": ["Lyon", "Oslo"], "visits": ["3", "4"]})
    plan = plan_chunks(["city", "visits"], TYPED)

    found = chunk_inputs(chunk, plan, TYPED, first_row=0, text=True)

    assert isinstance(found, Batch)
    assert found.columns["visits"].dtype == np.int64
    assert found.columns["city"].tolist() == ["Lyon", "Oslo"]


def test_a_value_that_does_not_fit_a_typed_column_names_the_files_row() -> None:
    chunk = pa.record_batch({"city": ["Lyon", "Oslo"], "visits": ["3", "many"]})
    plan = plan_chunks(["city", "visits"], TYPED)

    with pytest.raises(BatchInputError, match="column 'visits', row 51: 'many' is not a long"):
        chunk_inputs(chunk, plan, TYPED, first_row=50, text=True)


@pytest.mark.parametrize(
    ("predictions", "names"),
    [
        (np.array(["a", "b"]), ["prediction"]),
        (np.ones((2, 3)), [f"prediction_{i}" for i in range(3)]),
    ],
)
def test_predictions_become_one_column_or_one_per_value(predictions: Any, names: list[str]) -> None:
    assert list(output_columns(predictions, 2)) == names


def test_a_model_that_answers_another_number_of_rows_is_an_error() -> None:
    with pytest.raises(BatchInputError, match="answered 3 row"):
        output_columns(np.ones(3), 2)


def test_an_option_out_of_bounds_is_a_usage_error_before_anything_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["iris", "--input", "in.csv", "--output", "out.csv", "--chunk-rows", "0"])

    assert code == 2
    assert "chunk rows must be from 1 to 1000000, not 0" in capsys.readouterr().err


def test_a_csv_file_is_read_in_chunks_of_the_rows_asked_for_as_text(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("a,b\n" + "".join(f"{i},x{i}\n" for i in range(10)))
    source = TableSource(str(path), chunk_rows=4)

    chunks = list(source)
    source.close()

    assert source.columns == ["a", "b"]
    assert [chunk.num_rows for chunk in chunks] == [4, 4, 2]
    assert chunks[2].column("a").to_pylist() == ["8", "9"]


def test_an_aborted_output_leaves_nothing_and_a_committed_one_is_complete(
    tmp_path: Path,
) -> None:
    table = pa.table({"prediction": [1, 2]})
    aborted = TableSink(str(tmp_path / "a.parquet"))
    aborted.write(table)
    aborted.abort()
    committed = TableSink(str(tmp_path / "b.csv"))
    committed.write(table)
    committed.write(table)

    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".b.csv")) == []
    committed.commit()
    assert [p.name for p in tmp_path.iterdir()] == ["b.csv"]
    assert (tmp_path / "b.csv").read_text().splitlines() == ['"prediction"', "1", "2", "1", "2"]
