"""Serving benchmark: driftloop serving against ``mlflow models serve`` and Seldon MLServer.

The same scikit-learn model (LogisticRegression, 20 features, fitted on a DataFrame),
1-row requests, ``wrk`` at 8 connections, one server process at a time, one worker each:

- ``mlflow models serve`` 3.17.2 (``--env-manager local``, 1 worker), MLflow's
  ``/invocations`` with ``dataframe_split``; the model folder is written by
  ``mlflow.sklearn.save_model`` from the same fitted object;
- Seldon MLServer 1.7.1 + mlserver-sklearn (``parallel_workers: 0``), V2 ``infer``;
  the model is the same object saved with joblib;
- driftloop: ``driftloop run serving`` (uvicorn, 1 worker) loading the model from a real
  registry (``driftloop run tracking`` + ``driftloop run registry``, model logged and
  registered with the mlflow client, alias ``champion``), prediction logging on to an
  embedded tansu broker; measured on both protocols, with the peer's request body.

And driftloop's own V2 over gRPC against its V2 REST (:func:`grpc_vs_rest`): the same
server, the same model and row, the same concurrency, one closed-loop Python client for
both (asyncio on uvloop, a prepared request sent again and again: ``grpc.aio`` on one
channel with the ``ModelInferRequest`` ``tritonclient.grpc`` sends, raw HTTP/1.1
keep-alive connections with REST's JSON body), rounds alternating REST and gRPC.

Each peer is installed from PyPI into its own virtual environment under
``.driftloop/bench/``. Servers run under ``taskset -c 0``; this process, ``wrk`` and the
broker, tracking and registry (idle while measuring) under ``taskset -c 1``.

Usage::

    .venv/bin/python bench/serving.py [--rounds 3] [--duration 10] [--warmup 5]
                                      [--connections 8] [--keep] [--no-pin]
                                      [--grpc-only]

It prints every run, the medians, the ratios, and one summary line; it never fails on
a time. Targets (issue 6): driftloop >= 2,500 req/s with p99 <= 10 ms, >= 10x mlflow's
throughput and >= 5x MLServer's.

Then (issue 20, ``pyfunc_section``; ``--only pyfunc`` runs it alone): a custom
``mlflow.pyfunc.PythonModel`` with no fast path on driftloop, ``mlflow models serve``
and MLServer's MLflow runtime (``mlserver-mlflow`` 1.7.1, its own environment), 8
connections (target >= 3x MLServer's req/s at equal or better p99); and the same model
on driftloop with micro-batching off and on at 32 connections
(``--connections-batching``; target >= 2x throughput with p99 <= 20 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import (
    LOADGEN_CORE,
    SERVER_CORE,
    ServerProcess,
    admin_token,
    ensure_venv,
    environment_line,
    free_port,
    median,
    percentile,
    pin_this_process,
    summary_line,
    taskset_prefix,
)

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO / ".driftloop" / "bench"
MLFLOW_VERSION = "3.17.2"
MLFLOW_VENV = BENCH_DIR / "mlflow-venv"
MLSERVER_VERSION = "1.7.1"
MLSERVER_VENV = BENCH_DIR / "mlserver-venv"
MODEL_NAME = "bench-logreg"
N_FEATURES = 20
TARGET_RPS = 2500.0
TARGET_P99_MS = 10.0
TARGET_VS_MLFLOW = 10.0
TARGET_VS_MLSERVER = 5.0

# wrk prints this line from the script's done(): every figure, exact, in one place.
WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {{\\"requests\\":%d,\\"duration_us\\":%d,\\"connect\\":%d,\\"read\\":%d," ..
    "\\"write\\":%d,\\"status\\":%d,\\"timeout\\":%d,\\"p50_us\\":%d,\\"p99_us\\":%d," ..
    "\\"max_us\\":%d}}\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


# --- the model ------------------------------------------------------------------------


def features(rows: int, seed: int = 0) -> Any:
    """A DataFrame of ``rows`` x 20 features named ``f0`` ... ``f19``."""
    import numpy as np
    import pandas as pd  # type: ignore[import-untyped]

    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        rng.normal(size=(rows, N_FEATURES)), columns=[f"f{i}" for i in range(N_FEATURES)]
    )


def train() -> tuple[Any, Any]:
    """LogisticRegression fitted on a 20-feature DataFrame; the model and its data."""
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

    frame = features(2000)
    labels = (frame["f0"] + 0.5 * frame["f1"] - frame["f2"] > 0).astype(int)
    return LogisticRegression(max_iter=500).fit(frame, labels), frame


# --- the servers ----------------------------------------------------------------------


def _clean_env() -> dict[str, str]:
    # No tracking variables or bench markers leak into a server.
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DRIFTLOOP_", "MLFLOW_")) and k != "VIRTUAL_ENV"
    }


# What ``driftloop run <service> --port P`` does (``driftloop_cli.serve.serve``: uvicorn,
# one worker, settings from DRIFTLOOP_* variables), loading only that service's entry
# point: ``driftloop run`` loads every installed one and fails while another service's
# package is half-built in a shared checkout.
RUN_SERVICE = """
import sys
from importlib.metadata import entry_points
from driftloop_cli.serve import serve
(point,) = entry_points(group="driftloop.services", name=sys.argv[1])
serve(point.load(), port=int(sys.argv[2]))
"""


def _driftloop(service: str, port: int, env: dict[str, str], log: Path, core: int | None) -> Any:
    return ServerProcess(
        name=f"driftloop {service}",
        command=[sys.executable, "-c", RUN_SERVICE, service, str(port)],
        ready_url=f"http://127.0.0.1:{port}/readyz",
        env={**_clean_env(), **env},
        cwd=REPO,
        log_path=log,
        core=core,
    )


def register_model(
    model: Any, frame: Any, tracking_url: str, registry_url: str, *, name: str = MODEL_NAME
) -> str:
    """Log ``model`` (MLflow 3 defaults: skops, signature) and register it as ``name``;
    set ``champion``."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    mlflow.set_tracking_uri(tracking_url)
    mlflow.set_registry_uri(registry_url)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=name,
            signature=infer_signature(frame, model.predict(frame)),
            pip_requirements=["scikit-learn", "skops"],
        )
    version = str(info.registered_model_version)
    MlflowClient().set_registered_model_alias(name, "champion", version)
    return version


def mlflow_server(bin_dir: Path, workdir: Path, model: Any, frame: Any, core: int | None) -> Any:
    """``mlflow models serve`` on a folder saved from the same fitted model."""
    import mlflow
    from mlflow.models import infer_signature

    folder = workdir / "mlflow-model"
    mlflow.sklearn.save_model(
        model,
        str(folder),
        signature=infer_signature(frame, model.predict(frame)),
        pip_requirements=["scikit-learn", "skops"],
    )
    port = free_port()
    return ServerProcess(
        name="mlflow",
        command=[
            str(bin_dir / "mlflow"),
            "models",
            "serve",
            "-m",
            str(folder),
            "--env-manager",
            "local",
            "--workers",
            "1",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        ready_url=f"http://127.0.0.1:{port}/ping",
        env={**_clean_env(), "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"},
        cwd=workdir,
        log_path=workdir / "mlflow.log",
        core=core,
    )


def mlserver_server(bin_dir: Path, workdir: Path, model: Any, core: int | None) -> Any:
    """MLServer with mlserver-sklearn, ``parallel_workers: 0``, the model saved with joblib."""
    import joblib  # type: ignore[import-untyped]

    folder = workdir / "mlserver"
    (folder / MODEL_NAME).mkdir(parents=True)
    joblib.dump(model, folder / MODEL_NAME / "model.joblib")
    return _mlserver(
        bin_dir,
        folder,
        model=MODEL_NAME,
        implementation="mlserver_sklearn.SKLearnModel",
        uri="./model.joblib",
        log_path=workdir / "mlserver.log",
        core=core,
        label="mlserver",
    )


def _mlserver(
    bin_dir: Path,
    root: Path,
    *,
    model: str,
    implementation: str,
    uri: str,
    log_path: Path,
    core: int | None,
    label: str,
) -> Any:
    """MLServer serving ``root/model`` with ``implementation``, ``parallel_workers: 0``."""
    port = free_port()
    (root / "settings.json").write_text(
        json.dumps(
            {
                "host": "127.0.0.1",
                "http_port": port,
                "grpc_port": free_port(),
                "metrics_port": free_port(),
                "parallel_workers": 0,
            }
        )
    )
    (root / model / "model-settings.json").write_text(
        json.dumps(
            {
                "name": model,
                "implementation": implementation,
                "parameters": {"uri": uri, "version": "1"},
            }
        )
    )
    return ServerProcess(
        name=label,
        command=[str(bin_dir / "mlserver"), "start", str(root)],
        ready_url=f"http://127.0.0.1:{port}/v2/models/{model}/ready",
        env={**_clean_env(), "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"},
        cwd=root,
        log_path=log_path,
        core=core,
    )


def base_url(server: Any) -> str:
    """``http://host:port`` of a :class:`ServerProcess`."""
    return "/".join(str(server.ready_url).split("/")[:3])


# --- requests -------------------------------------------------------------------------


def mlflow_body(rows: Any) -> str:
    """MLflow's ``dataframe_split``."""
    return json.dumps(
        {"dataframe_split": {"columns": list(rows.columns), "data": rows.values.tolist()}}
    )


def v2_body(rows: Any) -> str:
    """V2 ``infer`` with one FP64 tensor of shape [rows, 20]."""
    return json.dumps(
        {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": list(rows.shape),
                    "datatype": "FP64",
                    "data": rows.values.reshape(-1).tolist(),
                }
            ]
        }
    )


def post(url: str, body: str, headers: dict[str, str] | None = None) -> Any:
    """POST ``body`` as JSON; the decoded answer (raises on a non-200)."""
    host, port = url.split("//")[1].split("/", maxsplit=1)[0].split(":")
    path = "/" + url.split("//")[1].split("/", 1)[1]
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(
            "POST", path, body=body, headers={"content-type": "application/json", **(headers or {})}
        )
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{url}: {response.status} {data[:300]!r}")
        return json.loads(data)
    finally:
        conn.close()


def predictions_of(answer: Any) -> list[Any]:
    """The predictions of an MLflow or V2 answer."""
    if "predictions" in answer:
        return list(answer["predictions"])
    return list(answer["outputs"][0]["data"])


@dataclass
class Target:
    """One server and protocol under load: where to POST, and the body."""

    name: str
    url: str
    body: str
    server: Any
    headers: dict[str, str] = field(default_factory=dict)
    runs: list[dict[str, float]] = field(default_factory=list)

    @property
    def rps(self) -> float:
        """Median req/s over the measured runs."""
        return median([r["rps"] for r in self.runs])

    @property
    def p50(self) -> float:
        """Median of the runs' p50 (ms)."""
        return median([r["p50"] for r in self.runs])

    @property
    def p99(self) -> float:
        """Median of the runs' p99 (ms)."""
        return median([r["p99"] for r in self.runs])

    @property
    def errors(self) -> int:
        """Errors over every measured run."""
        return int(sum(r["errors"] for r in self.runs))


def wrk(target: Target, *, seconds: float, connections: int, workdir: Path) -> dict[str, float]:
    """One ``wrk`` run (1 thread, ``connections`` connections): req/s, p50, p99, errors."""
    script = workdir / f"wrk-{re.sub(r'[^a-z0-9]+', '-', target.name)}.lua"
    headers = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in target.headers.items())
    script.write_text(WRK_SCRIPT.format(body=target.body, headers=headers))
    done = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            target.url,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {done.stdout[-500:]} {done.stderr[-500:]}")
    figures = json.loads(line.removeprefix("WRKJSON "))
    errors = sum(figures[k] for k in ("connect", "read", "write", "status", "timeout"))
    return {
        "rps": figures["requests"] / (figures["duration_us"] / 1e6),
        "p50": figures["p50_us"] / 1000,
        "p99": figures["p99_us"] / 1000,
        "errors": errors,
        "requests": figures["requests"],
    }


def metric(url: str, name: str) -> float:
    """The sum of a Prometheus metric's samples named exactly ``name`` (with labels)."""
    with contextlib.closing(http.client.HTTPConnection(url.split("//")[1], timeout=10)) as conn:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name):
            total += float(line.rsplit(" ", 1)[1])
    return total


# --- main -----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="A B A B rounds (>= 3)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of warm-up per side")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--connections-batching", type=int, default=32, help="connections, batching on vs off"
    )
    parser.add_argument(
        "--only",
        choices=["all", "sklearn", "pyfunc"],
        default="all",
        help="run only the sklearn figures, or only the pyfunc and micro-batching ones",
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin to cores")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument(
        "--grpc-only",
        action="store_true",
        help="only driftloop's V2 gRPC vs its V2 REST (no peer is installed or started)",
    )
    return parser.parse_args(argv)


@contextlib.contextmanager
def _workdir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="driftloop-bench-serving-"))
    try:
        yield path
    finally:
        if keep:
            print(f"work folder kept: {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def _fmt(target: Target) -> str:
    return f"{target.rps:,.0f} req/s p50 {target.p50:.1f} ms p99 {target.p99:.1f} ms"


def main(argv: Sequence[str] | None = None) -> None:  # noqa: PLR0915 - one straight story
    """Run the benchmark and print its figures."""
    args = parse_args(argv)
    pinned = "not pinned (--no-pin)" if args.no_pin else pin_this_process(LOADGEN_CORE)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    server_core = None if args.no_pin else SERVER_CORE
    side_core = None if args.no_pin else LOADGEN_CORE
    if shutil.which("wrk") is None and not args.grpc_only:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    print("serving benchmark: 1-row LogisticRegression (20 features), wrk, one worker each")
    print(environment_line())
    started = time.perf_counter()
    if not args.grpc_only:  # --grpc-only: no peer
        mlflow_bin = ensure_venv(
            MLFLOW_VENV, f"mlflow=={MLFLOW_VERSION}", distribution="mlflow", version=MLFLOW_VERSION
        )
        mlserver_bin = ensure_venv(
            MLSERVER_VENV,
            f"mlserver=={MLSERVER_VERSION} mlserver-sklearn=={MLSERVER_VERSION}",
            distribution="mlserver",
            version=MLSERVER_VERSION,
        )
        took = time.perf_counter() - started
        print(f"peers: {mlflow_bin / 'mlflow'}, {mlserver_bin / 'mlserver'} ({took:.0f} s)")
    print(
        f"wrk and this process: {pinned}; servers under test: "
        f"{' '.join(taskset_prefix(server_core)) or 'not pinned'}; broker, tracking and "
        f"registry: {' '.join(taskset_prefix(side_core)) or 'not pinned'}",
        flush=True,
    )

    from driftloop_bus.embedded import EmbeddedBroker

    @dataclass
    class PinnedBroker(EmbeddedBroker):
        core: int | None = None

        def command(self) -> list[str]:
            return [*taskset_prefix(self.core), *super().command()]

    model, frame = train()
    with _workdir(args.keep) as workdir, ExitStack() as stack:
        broker = stack.enter_context(PinnedBroker(core=side_core))
        home = workdir / "home"
        shared = {
            "DRIFTLOOP_HOME": str(home),
            "DRIFTLOOP_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            # Every serving's V2 gRPC server on a free port (two servings, one 8081).
            "DRIFTLOOP_SERVING_GRPC_PORT": "0",
        }
        tracking_port, registry_port, serving_port = free_port(), free_port(), free_port()
        grpc_port = free_port()
        tracking = _driftloop(
            "tracking", tracking_port, shared, workdir / "tracking.log", side_core
        )
        stack.callback(tracking.stop)
        tracking.start()
        # Authentication is on (the default): the services share the key generated in
        # their home; this process and wrk call with an admin token signed with it.
        token = admin_token(home)
        os.environ["MLFLOW_TRACKING_TOKEN"] = token
        auth = {"Authorization": f"Bearer {token}"}
        registry = _driftloop(
            "registry",
            registry_port,
            {**shared, "DRIFTLOOP_REGISTRY_TRACKING_URL": f"http://127.0.0.1:{tracking_port}"},
            workdir / "registry.log",
            side_core,
        )
        stack.callback(registry.stop)
        registry.start()
        version = register_model(
            model, frame, f"http://127.0.0.1:{tracking_port}", f"http://127.0.0.1:{registry_port}"
        )
        print(f"registered {MODEL_NAME} version {version} @champion in the driftloop registry")
        pyfunc = {
            "args": args,
            "stack": stack,
            "workdir": workdir,
            "shared": shared,
            "registry_port": registry_port,
            "auth": auth,
        }
        if args.only == "pyfunc":
            pyfunc_section(**pyfunc)
            return
        serving = _driftloop(
            "serving",
            serving_port,
            {
                **shared,
                "DRIFTLOOP_SERVING_REGISTRY_URL": f"http://127.0.0.1:{registry_port}",
                "DRIFTLOOP_SERVING_MODELS": MODEL_NAME,
                "DRIFTLOOP_SERVING_GRPC_PORT": str(grpc_port),
                # Default logging (INFO, JSON): an access line per request, as the
                # peers' default logging also writes.
            },
            workdir / "serving.log",
            server_core,
        )
        stack.callback(serving.stop)
        serving.start()
        if args.grpc_only:
            grpc_vs_rest(
                args, model=model, http_port=serving_port, grpc_port=grpc_port, token=token
            )
            return
        # The same with authentication off, for its cost; idle while the others run.
        open_port = free_port()
        serving_open = _driftloop(
            "serving",
            open_port,
            {
                **shared,
                "DRIFTLOOP_SERVING_REGISTRY_URL": f"http://127.0.0.1:{registry_port}",
                "DRIFTLOOP_SERVING_MODELS": MODEL_NAME,
                "DRIFTLOOP_SERVING_AUTH_MODE": "off",
            },
            workdir / "serving-auth-off.log",
            server_core,
        )
        stack.callback(serving_open.stop)
        serving_open.start()
        mlflow = mlflow_server(mlflow_bin, workdir, model, frame, server_core)
        stack.callback(mlflow.stop)
        mlflow.start(timeout=180)
        mlserver = mlserver_server(mlserver_bin, workdir, model, server_core)
        stack.callback(mlserver.stop)
        mlserver.start(timeout=180)

        row = features(1, seed=1)
        ours_url = f"http://127.0.0.1:{serving_port}"
        targets = {
            "mlflow": Target(
                "mlflow /invocations", f"{base_url(mlflow)}/invocations", mlflow_body(row), mlflow
            ),
            "ours-mlflow": Target(
                "driftloop /invocations",
                f"{ours_url}/invocations",
                mlflow_body(row),
                serving,
                auth,
            ),
            "mlserver": Target(
                "MLServer V2 infer",
                f"{base_url(mlserver)}/v2/models/{MODEL_NAME}/infer",
                v2_body(row),
                mlserver,
            ),
            "ours-v2": Target(
                "driftloop V2 infer",
                f"{ours_url}/v2/models/{MODEL_NAME}/infer",
                v2_body(row),
                serving,
                auth,
            ),
            "ours-v2-open": Target(
                "driftloop V2, auth off",
                f"http://127.0.0.1:{open_port}/v2/models/{MODEL_NAME}/infer",
                v2_body(row),
                serving_open,
            ),
        }
        # Same answers as the model in this process, on 20 different rows, everywhere.
        check = features(20, seed=2)
        expected = model.predict(check).tolist()
        for target in targets.values():
            body = mlflow_body(check) if "invocations" in target.url else v2_body(check)
            got = predictions_of(post(target.url, body, target.headers))
            same = "same answers" if got == expected else "DIFFERENT answers"
            print(f"  {target.name}: {same} as the model in process (20 rows)")

        print(f"\nwarm-up: {args.warmup:g} s per target", flush=True)
        for target in targets.values():
            wrk(target, seconds=args.warmup, connections=args.connections, workdir=workdir)
        sent_before = metric(ours_url, 'driftloop_prediction_records_total{outcome="sent"}')
        print(
            f"\n{args.rounds} rounds, {args.duration:g} s per run, {args.connections} connections, "
            "order: mlflow, driftloop /invocations, MLServer, driftloop V2, V2 with auth off",
            flush=True,
        )
        ours_requests = 0
        for round_no in range(1, args.rounds + 1):
            for target in targets.values():
                figures = wrk(
                    target, seconds=args.duration, connections=args.connections, workdir=workdir
                )
                target.runs.append(figures)
                if target.server is serving:
                    ours_requests += int(figures["requests"])
                print(
                    f"  round {round_no} {target.name:<24} {figures['rps']:8,.0f} req/s  "
                    f"p50 {figures['p50']:6.2f} ms  p99 {figures['p99']:7.2f} ms  "
                    f"errors {figures['errors']:.0f}",
                    flush=True,
                )
        time.sleep(1.0)  # the log's linger and acknowledgement
        sent = metric(ours_url, 'driftloop_prediction_records_total{outcome="sent"}') - sent_before
        spilled = metric(ours_url, 'driftloop_prediction_records_total{outcome="spilled"}')
        dropped = metric(ours_url, 'driftloop_prediction_records_total{outcome="dropped"}')
        print(
            f"\ndriftloop prediction log: {sent:,.0f} records acknowledged by the broker for "
            f"{ours_requests:,} measured requests (spilled {spilled:.0f}, dropped {dropped:.0f})"
        )
        report(targets, args.rounds)
        grpc_vs_rest(args, model=model, http_port=serving_port, grpc_port=grpc_port, token=token)
        if args.only == "all":
            pyfunc_section(**pyfunc)


def report(targets: dict[str, Target], rounds: int) -> None:
    """Medians, per-round ratios and the summary line."""
    mlflow, ours_mlflow = targets["mlflow"], targets["ours-mlflow"]
    mlserver, ours_v2 = targets["mlserver"], targets["ours-v2"]
    print("\nmedians over the rounds:")
    for target in targets.values():
        print(f"  {target.name:<24} {_fmt(target)}  errors {target.errors}")
    per_round = [
        (
            o["rps"] / p["rps"] if p["rps"] else float("nan"),
            v["rps"] / s["rps"] if s["rps"] else float("nan"),
        )
        for p, o, s, v in zip(
            mlflow.runs, ours_mlflow.runs, mlserver.runs, ours_v2.runs, strict=True
        )
    ]
    print(
        "per-round throughput ratios, driftloop / mlflow (/invocations): "
        + ", ".join(f"{a:.1f}x" for a, _ in per_round)
        + "; driftloop / MLServer (V2): "
        + ", ".join(f"{b:.1f}x" for _, b in per_round)
    )
    open_v2 = targets["ours-v2-open"]
    auth_rounds = [
        (1 - on["rps"] / off["rps"]) * 100 if off["rps"] else float("nan")
        for on, off in zip(ours_v2.runs, open_v2.runs, strict=True)
    ]
    print(
        f"authentication's cost on V2: {ours_v2.rps:,.0f} req/s with a token vs "
        f"{open_v2.rps:,.0f} req/s with auth off: {(1 - ours_v2.rps / open_v2.rps) * 100:+.1f}% "
        "throughput lost (target <= 5%); per round " + ", ".join(f"{x:+.1f}%" for x in auth_rounds)
    )
    vs_mlflow = ours_mlflow.rps / mlflow.rps
    vs_mlserver = ours_v2.rps / mlserver.rps
    print(
        summary_line(
            "serving",
            ours=f"V2 {_fmt(ours_v2)}, /invocations {_fmt(ours_mlflow)}, errors "
            f"{ours_v2.errors + ours_mlflow.errors}",
            peer=(
                f"mlflow {_fmt(mlflow)} errors {mlflow.errors} | MLServer {_fmt(mlserver)} "
                f"errors {mlserver.errors}"
            ),
            ratio=vs_mlflow,
            target=(
                f">= {TARGET_VS_MLFLOW:g}x mlflow, >= {TARGET_RPS:,.0f} req/s, "
                f"p99 <= {TARGET_P99_MS:g} ms"
            ),
        )
        + f" | vs MLServer {vs_mlserver:.2f}x (target >= {TARGET_VS_MLSERVER:g}x)"
        + f" | {rounds} rounds"
    )


# --- a pyfunc-only model, and micro-batching ------------------------------------------
#
# A custom ``mlflow.pyfunc.PythonModel`` (no fast path: every server loads it with
# ``mlflow.pyfunc.load_model``) saved as MLflow's "model from code", so the same file
# loads in each server's own MLflow without a pickle: on driftloop (through its registry),
# ``mlflow models serve`` and MLServer's MLflow runtime (mlserver-mlflow). Then the same
# model on driftloop with micro-batching off and on, at 32 connections: a pyfunc call
# costs the same for 1 row as for 32 (MLflow's schema check and pandas), so merging
# concurrent requests is where batching pays.

PYFUNC_MODEL = "bench-pyfunc"
PYFUNC_BATCHED = "bench-pyfunc-batched"
MLSERVER_MLFLOW_VENV = BENCH_DIR / "mlserver-mlflow-venv"
TARGET_PYFUNC_VS_MLSERVER = 3.0
TARGET_BATCHING = 2.0
TARGET_BATCHING_P99_MS = 20.0
BATCHING = {"max_batch_size": 32, "max_batch_time": 0.002}

PYFUNC_CODE = """
import mlflow.pyfunc
import numpy as np
from mlflow.models import set_model

WEIGHTS = np.array([1.0, 0.5, -1.0] + [0.0] * 17)


class LinearRule(mlflow.pyfunc.PythonModel):
    # The same rule as the sklearn model's labels, in numpy: a custom model.
    def predict(self, context, model_input, params=None):
        return (np.asarray(model_input, dtype=np.float64) @ WEIGHTS > 0).astype(np.int64)


set_model(LinearRule())
"""


def pyfunc_rule(frame: Any) -> list[int]:
    """What the pyfunc model answers, computed here."""
    import numpy as np

    weights = np.array([1.0, 0.5, -1.0] + [0.0] * (N_FEATURES - 3))
    return [int(x) for x in (frame.to_numpy() @ weights > 0)]


def save_pyfunc_folder(folder: Path, code: Path, signature: Any) -> Path:
    """The pyfunc model saved as an MLflow model folder (what mlflow and MLServer load)."""
    import mlflow

    mlflow.pyfunc.save_model(
        str(folder),
        python_model=str(code),
        signature=signature,
        pip_requirements=["mlflow", "numpy"],
    )
    return folder


def save_pyfunc(workdir: Path, frame: Any) -> tuple[Path, Any]:
    """The model's code file and its signature (20 doubles in, a long out)."""
    import numpy as np
    from mlflow.models import infer_signature

    code = workdir / "pyfunc_model.py"
    code.write_text(PYFUNC_CODE)
    return code, infer_signature(frame, np.zeros(len(frame), dtype=np.int64))


def register_pyfunc(code: Path, signature: Any, names: Sequence[str]) -> None:
    """Log the pyfunc model once per name (tracking and registry URIs already set)."""
    import mlflow
    from mlflow import MlflowClient

    for name in names:
        with mlflow.start_run():
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(code),
                signature=signature,
                registered_model_name=name,
                pip_requirements=["mlflow", "numpy"],
            )
        MlflowClient().set_registered_model_alias(
            name, "champion", str(info.registered_model_version)
        )


def mlserver_mlflow_server(bin_dir: Path, workdir: Path, folder: Path, core: int | None) -> Any:
    """MLServer's MLflow runtime on the saved pyfunc folder, ``parallel_workers: 0``."""
    root = workdir / "mlserver-pyfunc"
    (root / PYFUNC_MODEL).mkdir(parents=True)
    shutil.copytree(folder, root / PYFUNC_MODEL / "model")
    return _mlserver(
        bin_dir,
        root,
        model=PYFUNC_MODEL,
        implementation="mlserver_mlflow.MLflowRuntime",
        uri="./model",
        log_path=workdir / "mlserver-pyfunc.log",
        core=core,
        label="mlserver mlflow",
    )


def mlflow_pyfunc_server(bin_dir: Path, workdir: Path, folder: Path, core: int | None) -> Any:
    """``mlflow models serve`` on the saved pyfunc folder, 1 worker."""
    port = free_port()
    return ServerProcess(
        name="mlflow pyfunc",
        command=[
            str(bin_dir / "mlflow"),
            "models",
            "serve",
            "-m",
            str(folder),
            "--env-manager",
            "local",
            "--workers",
            "1",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        ready_url=f"http://127.0.0.1:{port}/ping",
        env={**_clean_env(), "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"},
        cwd=workdir,
        log_path=workdir / "mlflow-pyfunc.log",
        core=core,
    )


def v2_columns_body(rows: Any) -> str:
    """V2 ``infer`` with one FP64 input per column, decoded as a DataFrame (``pd``)."""
    return json.dumps(
        {
            "parameters": {"content_type": "pd"},
            "inputs": [
                {
                    "name": column,
                    "shape": [len(rows)],
                    "datatype": "FP64",
                    "data": rows[column].tolist(),
                }
                for column in rows.columns
            ],
        }
    )


def _measure(
    targets: Sequence[Target], *, args: argparse.Namespace, connections: int, workdir: Path
) -> None:
    """Warm up every target, then ``args.rounds`` rounds in order (A B A B ...)."""
    for target in targets:
        wrk(target, seconds=args.warmup, connections=connections, workdir=workdir)
    for round_no in range(1, args.rounds + 1):
        for target in targets:
            figures = wrk(target, seconds=args.duration, connections=connections, workdir=workdir)
            target.runs.append(figures)
            print(
                f"  round {round_no} {target.name:<30} {figures['rps']:8,.0f} req/s  "
                f"p50 {figures['p50']:6.2f} ms  p99 {figures['p99']:7.2f} ms  "
                f"errors {figures['errors']:.0f}",
                flush=True,
            )


def _ratios(ours: Target, peer: Target) -> str:
    return ", ".join(
        f"{o['rps'] / p['rps']:.1f}x" if p["rps"] else "n/a"
        for o, p in zip(ours.runs, peer.runs, strict=True)
    )


def pyfunc_section(
    *,
    args: argparse.Namespace,
    stack: ExitStack,
    workdir: Path,
    shared: dict[str, str],
    registry_port: int,
    auth: dict[str, str],
) -> None:
    """The pyfunc model on driftloop, mlflow and MLServer; then micro-batching off vs on."""

    server_core = None if args.no_pin else SERVER_CORE
    mlflow_bin = ensure_venv(
        MLFLOW_VENV, f"mlflow=={MLFLOW_VERSION}", distribution="mlflow", version=MLFLOW_VERSION
    )
    mlserver_bin = ensure_venv(
        MLSERVER_MLFLOW_VENV,
        f"mlserver=={MLSERVER_VERSION} mlserver-mlflow=={MLSERVER_VERSION}",
        distribution="mlserver-mlflow",
        version=MLSERVER_VERSION,
    )
    frame = features(200)
    code, signature = save_pyfunc(workdir, frame)
    register_pyfunc(code, signature, [PYFUNC_MODEL, PYFUNC_BATCHED])
    folder = save_pyfunc_folder(workdir / "pyfunc-model", code, signature)
    print(
        f"\npyfunc model ({PYFUNC_MODEL}: a custom PythonModel from code, no fast path) "
        f"registered twice; {PYFUNC_BATCHED} with batching {json.dumps(BATCHING)}",
        flush=True,
    )
    port = free_port()
    serving = _driftloop(
        "serving",
        port,
        {
            **shared,
            "DRIFTLOOP_SERVING_REGISTRY_URL": f"http://127.0.0.1:{registry_port}",
            "DRIFTLOOP_SERVING_MODELS": f"{PYFUNC_MODEL},{PYFUNC_BATCHED}",
            "DRIFTLOOP_SERVING_UNPICKLE_MODELS": json.dumps([PYFUNC_MODEL, PYFUNC_BATCHED]),
            "DRIFTLOOP_SERVING_BATCHING": json.dumps({PYFUNC_BATCHED: BATCHING}),
        },
        workdir / "serving-pyfunc.log",
        server_core,
    )
    stack.callback(serving.stop)
    serving.start(timeout=180)
    peer_mlflow = mlflow_pyfunc_server(mlflow_bin, workdir, folder, server_core)
    stack.callback(peer_mlflow.stop)
    peer_mlflow.start(timeout=180)
    peer_mlserver = mlserver_mlflow_server(mlserver_bin, workdir, folder, server_core)
    stack.callback(peer_mlserver.stop)
    peer_mlserver.start(timeout=180)
    time.sleep(5.0)  # let the servers go idle (BENCHMARKS.md)

    row = features(1, seed=1)
    ours = f"http://127.0.0.1:{port}"
    mlserver_url = f"{base_url(peer_mlserver)}/v2/models/{PYFUNC_MODEL}/infer"
    targets = [
        Target(
            "mlflow pyfunc /invocations",
            f"{base_url(peer_mlflow)}/invocations",
            mlflow_body(row),
            peer_mlflow,
        ),
        Target(
            "driftloop pyfunc /invocations",
            f"{ours}/invocations?model={PYFUNC_MODEL}",
            mlflow_body(row),
            serving,
            auth,
        ),
        Target("MLServer mlflow V2", mlserver_url, v2_columns_body(row), peer_mlserver),
        Target(
            "driftloop pyfunc V2",
            f"{ours}/v2/models/{PYFUNC_MODEL}/infer",
            v2_columns_body(row),
            serving,
            auth,
        ),
    ]
    check = features(20, seed=2)
    expected = pyfunc_rule(check)
    for target in targets:
        body = mlflow_body(check) if "invocations" in target.url else v2_columns_body(check)
        got = [int(x) for x in predictions_of(post(target.url, body, target.headers))]
        same = "same answers" if got == expected else "DIFFERENT answers"
        print(f"  {target.name}: {same} as the rule in process (20 rows)")
    print(
        f"{args.rounds} rounds, {args.duration:g} s per run, {args.connections} connections, "
        "order: " + ", ".join(t.name for t in targets),
        flush=True,
    )
    _measure(targets, args=args, connections=args.connections, workdir=workdir)
    peer_mlflow.stop()
    peer_mlserver.stop()

    batched = [
        Target(
            "driftloop pyfunc V2, batching off",
            f"{ours}/v2/models/{PYFUNC_MODEL}/infer",
            v2_columns_body(row),
            serving,
            auth,
        ),
        Target(
            "driftloop pyfunc V2, batching on",
            f"{ours}/v2/models/{PYFUNC_BATCHED}/infer",
            v2_columns_body(row),
            serving,
            auth,
        ),
    ]
    print(f"\nmicro-batching off vs on, {args.connections_batching} connections", flush=True)
    batches_before = metric(ours, "driftloop_serving_batch_size_count")
    _measure(batched, args=args, connections=args.connections_batching, workdir=workdir)
    batches = metric(ours, "driftloop_serving_batch_size_count") - batches_before
    rows = metric(ours, "driftloop_serving_batch_size_sum")
    report_pyfunc(targets, batched, calls=batches, rows=rows, args=args)


def report_pyfunc(
    targets: Sequence[Target],
    batched: Sequence[Target],
    *,
    calls: float,
    rows: float,
    args: argparse.Namespace,
) -> None:
    """Medians, per-round ratios and the two summary lines."""
    mlflow_t, ours_mlflow, mlserver, ours_v2 = targets
    off, on = batched
    print("\nmedians over the rounds:")
    for target in [*targets, *batched]:
        print(f"  {target.name:<34} {_fmt(target)}  errors {target.errors}")
    print(
        f"per-round ratios: driftloop / MLServer (V2) {_ratios(ours_v2, mlserver)}; "
        f"driftloop / mlflow (/invocations) {_ratios(ours_mlflow, mlflow_t)}; "
        f"batching on / off {_ratios(on, off)}"
    )
    if calls:
        print(f"batching on: {rows / calls:.1f} rows per call of the model on average")
    print(
        summary_line(
            "serving pyfunc",
            ours=f"V2 {_fmt(ours_v2)}, /invocations {_fmt(ours_mlflow)}",
            peer=f"MLServer mlflow {_fmt(mlserver)} | mlflow {_fmt(mlflow_t)}",
            ratio=ours_v2.rps / mlserver.rps if mlserver.rps else float("nan"),
            target=f">= {TARGET_PYFUNC_VS_MLSERVER:g}x MLServer at equal or better p99",
        )
        + f" | vs mlflow {ours_mlflow.rps / mlflow_t.rps:.1f}x | {args.rounds} rounds"
    )
    print(
        summary_line(
            "serving micro-batching",
            ours=f"on {_fmt(on)}",
            peer=f"off {_fmt(off)}",
            ratio=on.rps / off.rps if off.rps else float("nan"),
            target=f">= {TARGET_BATCHING:g}x with p99 <= {TARGET_BATCHING_P99_MS:g} ms",
        )
        + f" | {args.connections_batching} connections, {args.rounds} rounds"
    )


# --- V2 gRPC vs REST on driftloop ---------------------------------------------------------

GRPC_INFER = "/inference.GRPCInferenceService/ModelInfer"


def grpc_infer_request(rows: Any) -> bytes:
    """The ``ModelInferRequest`` ``tritonclient.grpc`` sends for ``rows``: one FP64 input of
    shape [rows, 20], its values in ``raw_input_contents``."""
    import numpy as np
    from tritonclient.grpc import service_pb2  # type: ignore[import-untyped]

    request = service_pb2.ModelInferRequest(model_name=MODEL_NAME)
    request.inputs.add(name="input-0", datatype="FP64", shape=list(rows.shape))
    request.raw_input_contents.append(np.ascontiguousarray(rows.to_numpy(), "<f8").tobytes())
    return bytes(request.SerializeToString())


def http_request(port: int, path: str, body: str, headers: dict[str, str]) -> bytes:
    """A keep-alive HTTP/1.1 POST of ``body`` (JSON), ready to send as it is."""
    data = body.encode()
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(data)}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


async def _grpc_caller(
    channel: Any, request: bytes, metadata: Any, deadline: float, latencies: list[float]
) -> int:
    import grpc

    # No serializers: the prepared bytes go out, the answer's bytes come back.
    call = channel.unary_unary(GRPC_INFER)
    errors = 0
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        try:
            await call(request, metadata=metadata, timeout=10)
        except grpc.RpcError:
            errors += 1
            continue
        latencies.append(time.perf_counter() - started)
    return errors


async def _http_caller(port: int, request: bytes, deadline: float, latencies: list[float]) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    errors = 0
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            found = re.search(rb"(?i)content-length: *(\d+)", head)
            await reader.readexactly(int(found.group(1)) if found else 0)
            if not head.startswith(b"HTTP/1.1 200"):
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)
    finally:
        writer.close()
    return errors


def closed_loop(
    kind: str, *, port: int, request: bytes, token: str, seconds: float, connections: int
) -> dict[str, float]:
    """``connections`` callers sending ``request`` back to back for ``seconds``, over gRPC
    (one channel) or HTTP/1.1 (one connection each): req/s, p50, p99 (ms), errors."""
    import grpc
    import uvloop

    async def run() -> dict[str, float]:
        latencies: list[float] = []
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()
        if kind == "grpc":
            metadata = (("authorization", f"Bearer {token}"),)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                errors = await asyncio.gather(
                    *(
                        _grpc_caller(channel, request, metadata, deadline, latencies)
                        for _ in range(connections)
                    )
                )
        else:
            errors = await asyncio.gather(
                *(_http_caller(port, request, deadline, latencies) for _ in range(connections))
            )
        took = time.perf_counter() - started
        return {
            "requests": len(latencies),
            "rps": len(latencies) / took,
            "p50": percentile(latencies, 50) * 1000,
            "p99": percentile(latencies, 99) * 1000,
            "errors": sum(errors),
        }

    return dict(uvloop.run(run()))


def grpc_vs_rest(
    args: argparse.Namespace, *, model: Any, http_port: int, grpc_port: int, token: str
) -> None:
    """driftloop's V2 over gRPC vs its V2 REST: same server, model, row and concurrency."""
    import tritonclient.grpc as triton  # type: ignore[import-untyped]

    check = features(20, seed=2)
    expected = model.predict(check).tolist()
    client = triton.InferenceServerClient(f"127.0.0.1:{grpc_port}")
    matrix = triton.InferInput("input-0", list(check.shape), "FP64")
    matrix.set_data_from_numpy(check.to_numpy())
    answer = client.infer(MODEL_NAME, [matrix], headers={"authorization": f"Bearer {token}"})
    rest = predictions_of(
        post(
            f"http://127.0.0.1:{http_port}/v2/models/{MODEL_NAME}/infer",
            v2_body(check),
            {"Authorization": f"Bearer {token}"},
        )
    )
    same = answer.as_numpy("predict").tolist() == expected == rest
    client.close()
    print(
        f"\nV2 gRPC vs REST on driftloop (port {grpc_port} vs {http_port}): tritonclient.grpc "
        f"and REST give {'the same' if same else 'DIFFERENT'} answers as the model in process "
        "(20 rows)"
    )
    row = features(1, seed=1)
    requests = {
        "rest": http_request(
            http_port,
            f"/v2/models/{MODEL_NAME}/infer",
            v2_body(row),
            {"Authorization": f"Bearer {token}"},
        ),
        "grpc": grpc_infer_request(row),
    }
    ports = {"rest": http_port, "grpc": grpc_port}

    def once(kind: str, seconds: float) -> dict[str, float]:
        return closed_loop(
            kind,
            port=ports[kind],
            request=requests[kind],
            token=token,
            seconds=seconds,
            connections=args.connections,
        )

    for kind in ("rest", "grpc"):
        once(kind, args.warmup)
    runs: dict[str, list[dict[str, float]]] = {"rest": [], "grpc": []}
    print(
        f"{args.rounds} rounds, {args.duration:g} s per run, {args.connections} callers, "
        "one Python client (asyncio, uvloop) for both; order: REST, gRPC",
        flush=True,
    )
    for round_no in range(1, args.rounds + 1):
        for kind in ("rest", "grpc"):
            figures = once(kind, args.duration)
            runs[kind].append(figures)
            print(
                f"  round {round_no} V2 {kind.upper():<5} {figures['rps']:8,.0f} req/s  "
                f"p50 {figures['p50']:6.2f} ms  p99 {figures['p99']:7.2f} ms  "
                f"errors {figures['errors']:.0f}",
                flush=True,
            )

    def fmt(kind: str) -> str:
        rps = median([r["rps"] for r in runs[kind]])
        p50 = median([r["p50"] for r in runs[kind]])
        p99 = median([r["p99"] for r in runs[kind]])
        errors = sum(r["errors"] for r in runs[kind])
        return f"{rps:,.0f} req/s p50 {p50:.1f} ms p99 {p99:.1f} ms errors {errors:.0f}"

    ratios = [g["rps"] / r["rps"] for r, g in zip(runs["rest"], runs["grpc"], strict=True)]
    ratio = median([r["rps"] for r in runs["grpc"]]) / median([r["rps"] for r in runs["rest"]])
    print("per-round throughput ratios, gRPC / REST: " + ", ".join(f"{x:.2f}x" for x in ratios))
    print(
        summary_line(
            "serving V2 gRPC vs REST",
            ours=f"gRPC {fmt('grpc')}",
            peer=f"REST {fmt('rest')}",
            ratio=ratio,
        )
        + f" | {args.connections} callers | {args.rounds} rounds"
    )


if __name__ == "__main__":
    main()
