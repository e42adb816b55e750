"""What one call of the serving benchmark's pyfunc model costs in process (the ceiling
of micro-batching for that model: batching shares this call and nothing else).

    .venv/bin/python bench/pyfunc_call.py

Saves the model of ``serving.py --only pyfunc`` (a ``PythonModel`` from code) to a
temporary folder, loads it with ``mlflow.pyfunc.load_model`` and times 2,000 calls of
1 and of 20 rows through ``PyFuncModel.predict`` (MLflow's schema enforcement) and
through the ``PythonModel.predict`` serving calls past it.
"""

from __future__ import annotations

import sys
import tempfile
import timeit
from pathlib import Path

import mlflow.pyfunc

sys.path.insert(0, str(Path(__file__).parent))
from serving import features, save_pyfunc, save_pyfunc_folder

CALLS = 2000


def main() -> None:
    work = Path(tempfile.mkdtemp())
    frame = features(200)
    code, signature = save_pyfunc(work, frame)
    folder = save_pyfunc_folder(work / "model", code, signature)
    model = mlflow.pyfunc.load_model(str(folder))
    inner = model._model_impl.python_model
    for rows in (1, 20):
        batch = frame.iloc[:rows]
        enforced = timeit.timeit(lambda b=batch: model.predict(b), number=CALLS) / CALLS
        direct = timeit.timeit(lambda b=batch: inner.predict(None, b), number=CALLS) / CALLS
        print(
            f"{rows} rows: PyFuncModel.predict {enforced * 1e3:.3f} ms, "
            f"PythonModel.predict {direct * 1e3:.3f} ms"
        )


if __name__ == "__main__":
    main()
