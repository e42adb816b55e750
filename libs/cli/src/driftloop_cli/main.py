"""The ``driftloop`` command: options in, calls to ``serve``/``up``/``supervisor`` out.

Imports of the heavier modules happen inside the commands so that ``--help``
stays fast and no service code is loaded before it is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from collections.abc import Collection

    from driftloop_kit.service import ServiceDefinition

app = typer.Typer(
    no_args_is_help=True,
    help="driftloop: the closed MLOps loop over Kafka.",
    # Locals in tracebacks would print settings, which hold secrets.
    pretty_exceptions_show_locals=False,
)

#: Exit code for a command line that names something that does not exist here.
EXIT_USAGE = 2


@app.callback()
def main() -> None:
    """driftloop: the closed MLOps loop over Kafka."""


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _installed() -> dict[str, ServiceDefinition]:
    from driftloop_kit.service import installed_services

    try:
        return installed_services()
    # A broken plugin gets one clear line rather than a traceback.
    except Exception as exc:
        _fail(f"cannot load the installed services: {exc}")


def _check_names(names: list[str], installed: Collection[str]) -> None:
    """Exit with a usage error naming what is wrong if a name is unknown or not installed."""
    from driftloop_kit.service import SERVICE_NAMES

    for name in names:
        # An installed plugin outside the six (a test double, an extension) runs too.
        if name not in SERVICE_NAMES and name not in installed:
            _fail(f"unknown service {name!r}; known: {', '.join(SERVICE_NAMES)}", EXIT_USAGE)
        if name not in installed:
            have = ", ".join(installed) or "none"
            _fail(
                f"service {name!r} is not installed in this environment; installed: {have}",
                EXIT_USAGE,
            )


def _resolve(names: list[str], installed: dict[str, ServiceDefinition]) -> list[ServiceDefinition]:
    _check_names(names, installed)
    return [installed[name] for name in names]


@app.command()
def broker(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Kafka port to listen on.")] = 9092,
) -> None:
    """Run the embedded Kafka-compatible broker (tansu, in memory) until Ctrl-C."""
    from driftloop_cli.serve import port_is_free
    from driftloop_cli.supervisor import ChildFailedError, StopRequestedError, Supervisor
    from driftloop_cli.up import broker_spec

    if not port_is_free(host, port):
        _fail(f"port {port} on {host} is already in use; choose another with --port")
    supervisor = Supervisor()
    code = 0
    with supervisor.handle_signals():
        try:
            supervisor.start(broker_spec(host=host, port=port, log_path=None))
            typer.echo(f"broker listening on {host}:{port} (in memory); press Ctrl-C to stop")
            supervisor.watch()
        except StopRequestedError:
            pass
        except ChildFailedError as exc:
            typer.echo(f"error: broker {exc.reason}", err=True)
            code = 1
        finally:
            supervisor.stop()
    if code:
        raise typer.Exit(code)
    typer.echo("broker stopped")


@app.command()
def run(
    service: Annotated[str, typer.Argument(help="Service to run, e.g. tracking.")],
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Run one service in the foreground (settings from DRIFTLOOP_* variables)."""
    from driftloop_cli.serve import ListenError, ServeError, serve
    from driftloop_kit.service import installed_names, load_service

    # Only this service's code is imported: `up` starts one such process per service.
    _check_names([service], installed_names())
    try:
        definition = load_service(service)
    except Exception as exc:
        _fail(f"cannot load the service {service!r}: {exc}")
    try:
        serve(definition, host=host, port=port)
    except ListenError as exc:
        _fail(f"{service}: {exc}")
    except ServeError as exc:
        _fail(str(exc))


@app.command()
def up(
    names: Annotated[
        list[str] | None,
        typer.Argument(metavar="[SERVICE]...", help="Start only these services (as --only)."),
    ] = None,
    *,
    home: Annotated[
        Path,
        typer.Option(envvar="DRIFTLOOP_HOME", help="Folder for state, logs and up.json."),
    ] = Path(".driftloop"),
    bootstrap_servers: Annotated[
        str | None,
        typer.Option(
            "--bootstrap-servers",
            metavar="HOST:PORT",
            help="Use this Kafka instead of starting the embedded broker.",
        ),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", metavar="NAME", help="Start only these services (repeatable)."),
    ] = None,
    broker_port: Annotated[int, typer.Option(help="Port of the embedded broker.")] = 9092,
    timeout: Annotated[
        float,
        typer.Option(
            help=(
                "Seconds the services have to answer /healthz (they start together; "
                "imports take a while on a busy 2-core machine)."
            )
        ),
    ] = 180.0,
    grace: Annotated[
        float, typer.Option(help="Seconds between SIGTERM and SIGKILL on stop.")
    ] = 10.0,
    free_ports: Annotated[
        bool,
        typer.Option(
            "--free-ports",
            help=(
                "Start the broker and the services on free ports and wire each service's "
                "URLs of the others to them (up.json and the table printed say where)."
            ),
        ),
    ] = False,
    detach: Annotated[
        bool,
        typer.Option(
            "--detach",
            "-d",
            help="Run in the background; then driftloop status, logs and down.",
        ),
    ] = False,
    max_restarts: Annotated[
        int,
        typer.Option(
            min=0,
            max=1000,
            help="Crashes of one service within --restart-window after which it is left "
            "stopped (the others keep running); 0 never restarts.",
        ),
    ] = 5,
    restart_delay: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=60.0,
            help="Seconds before a crashed service is restarted; doubles with each crash "
            "within the window, up to 30 s.",
        ),
    ] = 1.0,
    restart_window: Annotated[
        float, typer.Option(min=1.0, max=86400.0, help="Seconds over which crashes count.")
    ] = 120.0,
) -> None:
    """Start the broker and every installed service (or those named); Ctrl-C stops them all.

    A service that crashes is restarted after a backoff (as compose's `restart:
    unless-stopped`), the restart logged and counted; one that keeps crashing is left
    stopped with a message while the others keep running.
    """
    import sys

    from driftloop_cli.supervisor import RestartPolicy
    from driftloop_cli.up import UpError, run_up

    installed = _installed()
    chosen = [*(names or []), *(only or [])]
    if chosen:
        wanted = [n.strip() for item in chosen for n in item.split(",") if n.strip()]
        definitions = _resolve(wanted, installed)
        # Start in the suite's order whatever the order on the command line.
        definitions = [d for d in installed.values() if d in definitions]
    else:
        definitions = list(installed.values())
    if detach:
        from driftloop_cli.control import detach as run_detached

        argv = [arg for arg in sys.argv[1:] if arg not in ("--detach", "-d")]
        argv = argv[argv.index("up") + 1 :] if "up" in argv else argv
        try:
            code = run_detached(home=home, argv=argv, echo=typer.echo)
        except UpError as exc:
            _fail(str(exc))
        if code:
            raise typer.Exit(code)
        return
    restart = RestartPolicy(
        initial_delay=restart_delay,
        max_delay=max(30.0, restart_delay),
        max_restarts=max_restarts,
        window=restart_window,
    )
    try:
        code = run_up(
            home=home,
            definitions=definitions,
            bootstrap_servers=bootstrap_servers,
            broker_port=broker_port,
            startup_timeout=timeout,
            grace=grace,
            echo=typer.echo,
            echo_err=lambda line: typer.echo(line, err=True),
            free_ports=free_ports,
            restart=restart,
        )
    except UpError as exc:
        _fail(str(exc))
    if code:
        raise typer.Exit(code)


_UP_HOME = typer.Option(envvar="DRIFTLOOP_HOME", help="Home of the suite `driftloop up` runs.")


@app.command()
def status(
    home: Annotated[Path, _UP_HOME] = Path(".driftloop"),
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Show each child of the running suite: pid, state, restarts, health (/healthz), URL.

    Exits 1 when no suite runs with this home.
    """
    import dataclasses
    import json

    from driftloop_cli.control import NotRunningError, format_status
    from driftloop_cli.control import status as read_status

    try:
        rows = read_status(home)
    except NotRunningError as exc:
        _fail(str(exc))
    if as_json:
        for row in rows:
            typer.echo(json.dumps(dataclasses.asdict(row)))
        return
    typer.echo(format_status(rows))


@app.command()
def logs(
    names: Annotated[
        list[str] | None,
        typer.Argument(metavar="[SERVICE]...", help="Whose logs (all when omitted)."),
    ] = None,
    *,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the suite stops.")
    ] = False,
    tail: Annotated[
        int | None,
        typer.Option("--tail", "-n", min=0, max=1_000_000, help="Only the last N lines of each."),
    ] = None,
    home: Annotated[Path, _UP_HOME] = Path(".driftloop"),
) -> None:
    """Print the logs of the suite's services (and broker, and a detached `up`)."""
    from driftloop_cli.control import print_logs

    try:
        print_logs(home, names or [], tail=tail, follow=follow, echo=typer.echo)
    except KeyError as exc:
        _fail(str(exc.args[0]), EXIT_USAGE)


@app.command()
def down(
    home: Annotated[Path, _UP_HOME] = Path(".driftloop"),
    timeout: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=3600.0,
            help="Seconds for a graceful stop before everything still alive is killed.",
        ),
    ] = 30.0,
) -> None:
    """Stop the suite `driftloop up` runs with this home (gracefully, then by force)."""
    from driftloop_cli.control import down as stop_suite

    stop_suite(home, timeout=timeout, echo=typer.echo)


@app.command()
def services() -> None:
    """List the services of the suite, whether each is installed, and its default port."""
    from driftloop_kit.service import SERVICE_NAMES

    installed = _installed()
    names = list(SERVICE_NAMES) + [n for n in installed if n not in SERVICE_NAMES]
    width = max(len(n) for n in names)
    typer.echo(f"{'SERVICE'.ljust(width)}  INSTALLED  DEFAULT PORT")
    for name in names:
        definition = installed.get(name)
        port = str(definition.settings_cls.default_port) if definition else "-"
        typer.echo(f"{name.ljust(width)}  {('yes' if definition else 'no').ljust(9)}  {port}")


@app.command()
def topics(
    manifests: Annotated[
        bool, typer.Option("--manifests", help="Print Strimzi KafkaTopic manifests (YAML).")
    ] = False,
    create: Annotated[
        bool, typer.Option("--create", help="Create the missing topics on --bootstrap-servers.")
    ] = False,
    bootstrap_servers: Annotated[
        str,
        typer.Option(envvar="DRIFTLOOP_KAFKA_BOOTSTRAP_SERVERS", help="Kafka to create them on."),
    ] = "127.0.0.1:9092",
    replication_factor: Annotated[int, typer.Option(help="Replicas per partition.")] = 1,
) -> None:
    """List the declared Kafka topics, print their manifests, or create them."""
    from driftloop_cli.topics import kafka_topic_manifests, topics_table

    if manifests:
        typer.echo(kafka_topic_manifests(), nl=False)
        return
    if create:
        import asyncio

        from driftloop_bus.topics import ensure_topics
        from driftloop_events.topics import all_topics

        try:
            created = asyncio.run(
                ensure_topics(
                    bootstrap_servers, all_topics(), replication_factor=replication_factor
                )
            )
        except Exception as exc:
            _fail(f"cannot create topics on {bootstrap_servers}: {exc}")
        typer.echo(f"created {len(created)} topic(s): {', '.join(created) or 'none missing'}")
        return
    typer.echo(topics_table(), nl=False)


@app.command()
def handlers(
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the raw Markdown (for docs).")
    ] = False,
) -> None:
    """Print what each installed service reacts to: event type -> handler."""
    from driftloop_cli.handlers import handler_tables

    text = handler_tables(_installed().values())
    if markdown:
        typer.echo(text, nl=False)
        return
    from rich.console import Console
    from rich.markdown import Markdown

    Console().print(Markdown(text))


token_app = typer.Typer(
    no_args_is_help=True,
    help="Tokens of the suite: every call but /healthz, /readyz and /metrics needs one.",
)
app.add_typer(token_app, name="token")

_HOME_OPTION = typer.Option(
    envvar="DRIFTLOOP_HOME", help="Home of the suite (its generated secret_key, admin.token)."
)


@token_app.command("create")
def token_create(
    *,
    role: Annotated[
        str, typer.Option(help="reader, writer, deployer or admin (each includes the ones before).")
    ],
    subject: Annotated[
        str, typer.Option(help="Who holds it (shown in denials and in events' actors).")
    ] = "cli",
    ttl: Annotated[str, typer.Option(help="Lifetime: 90s, 15m, 12h, 30d (at most 366d).")] = "30d",
    home: Annotated[Path, _HOME_OPTION] = Path(".driftloop"),
    tracking_url: Annotated[
        str | None,
        typer.Option(help="The suite's tracking service (default: from <home>/up.json)."),
    ] = None,
    offline: Annotated[
        bool,
        typer.Option(
            "--offline",
            help="Sign it here with the key, unrecorded: not listed, revoked only by a new key.",
        ),
    ] = False,
) -> None:
    """Print a new token: issued by the running suite's tracking service (listed and
    revocable), or with --offline signed here with the suite's key.

    Use it as `Authorization: Bearer <token>`, `MLFLOW_TRACKING_TOKEN=<token>` for the mlflow
    client, or as the password with any user name (`MLFLOW_TRACKING_PASSWORD`).
    """
    from driftloop_cli.credentials import ApiError, call_api, issue_token, parse_ttl
    from driftloop_kit.auth import Role

    try:
        parsed_role = Role.parse(role)
        seconds = parse_ttl(ttl)
    except ValueError as exc:
        _fail(str(exc), EXIT_USAGE)
    if not subject.strip() or len(subject) > 200:
        _fail("--subject must be 1 to 200 characters", EXIT_USAGE)
    if offline:
        try:
            token = issue_token(home, role=parsed_role, subject=subject, ttl_seconds=seconds)
        except FileNotFoundError as exc:
            _fail(str(exc))
        typer.echo(token)
        return
    body = {"role": parsed_role.label, "subject": subject, "ttl_seconds": seconds}
    try:
        issued = call_api(home, "POST", "/tokens", url=tracking_url, json=body)
    except ApiError as exc:
        _fail(f"{exc} (or use --offline)")
    typer.echo(issued["token"])


@token_app.command("list")
def token_list(
    home: Annotated[Path, _HOME_OPTION] = Path(".driftloop"),
    tracking_url: Annotated[
        str | None, typer.Option(help="The tracking service (default: from <home>/up.json).")
    ] = None,
    include_expired: Annotated[bool, typer.Option("--all", help="Expired ones too.")] = False,
) -> None:
    """List the tokens the suite issued (ids, never the tokens)."""
    from datetime import UTC, datetime

    from driftloop_cli.credentials import ApiError, call_api

    try:
        found = call_api(
            home,
            "GET",
            "/tokens",
            url=tracking_url,
            params={"include_expired": str(include_expired).lower()},
        )
    except ApiError as exc:
        _fail(str(exc))

    def when(seconds: int | None) -> str:
        return "-" if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat()

    rows = [
        (t["token_id"], t["subject"], t["role"], when(t["expires_at"]), when(t["revoked_at"]))
        for t in found["tokens"]
    ]
    typer.echo("token id                          subject  role  expires  revoked")
    for row in rows:
        typer.echo("  ".join(str(cell) for cell in row))


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (token list; `jti`).")],
    home: Annotated[Path, _HOME_OPTION] = Path(".driftloop"),
    tracking_url: Annotated[
        str | None, typer.Option(help="The tracking service (default: from <home>/up.json).")
    ] = None,
) -> None:
    """Revoke a token: every service refuses it within DRIFTLOOP_AUTH_REFRESH_SECONDS."""
    from driftloop_cli.credentials import ApiError, call_api

    try:
        call_api(home, "DELETE", f"/tokens/{token_id}", url=tracking_url)
    except ApiError as exc:
        _fail(str(exc))
    typer.echo(f"revoked {token_id}")


@token_app.command("show")
def token_show(
    token: Annotated[str, typer.Argument(help="A token ('-' reads it from standard input).")],
    home: Annotated[Path, _HOME_OPTION] = Path(".driftloop"),
) -> None:
    """Check a token with the suite's key and print who it names, its role and expiry."""
    import json
    import sys
    from datetime import UTC, datetime

    from driftloop_cli.credentials import describe
    from driftloop_kit.auth import Unauthenticated

    text = sys.stdin.read().strip() if token == "-" else token.strip()
    try:
        claims = describe(text, home)
    except (Unauthenticated, FileNotFoundError) as exc:
        _fail(str(exc))
    for name in ("iat", "exp"):
        if isinstance(claims.get(name), int | float):
            claims[name] = datetime.fromtimestamp(float(claims[name]), UTC).isoformat()  # type: ignore[arg-type]
    typer.echo(json.dumps(claims, indent=2))


_TRAINER_OPTION = typer.Option(
    envvar="DRIFTLOOP_TRAINER_URL",
    help="The suite's trainer (default: from <home>/up.json, else http://127.0.0.1:8008).",
)


@app.command()
def apply(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Model documents: YAML files, or folders of them.", metavar="FILE"),
    ],
    *,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only check the documents; send nothing.")
    ] = False,
    home: Annotated[Path, _HOME_OPTION] = Path(".driftloop"),
    trainer_url: Annotated[str | None, _TRAINER_OPTION] = None,
) -> None:
    """Declare models: each document (apiVersion driftloop/v1, kind Model) is checked,
    then stored by the trainer as the model's next revision; the trainer, serving and
    the monitor take it up without a restart. If any document is invalid, every error is
    listed and nothing is sent."""
    from driftloop_cli.declarations import (
        ApplyError,
        InvalidDocuments,
        apply_documents,
        read_documents,
        validate_documents,
    )
    from driftloop_cli.declarations import trainer_url as resolve_trainer

    try:
        declarations = validate_documents(read_documents(paths))
    except InvalidDocuments as exc:
        for line in exc.errors:
            typer.echo(f"error: {line}", err=True)
        typer.echo(f"{len(exc.errors)} error(s); nothing was applied", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    if dry_run:
        for declaration in declarations:
            typer.echo(f"model/{declaration.name} valid (dry run)")
        return
    base = resolve_trainer(trainer_url, home)
    try:
        for applied in apply_documents(declarations, base_url=base, home=home):
            what = "configured" if applied["changed"] else "unchanged"
            typer.echo(f"model/{applied['name']} {what} (revision {applied['revision']})")
    except ApplyError as exc:
        _fail(str(exc))


@app.command()
def score(
    model: Annotated[
        str,
        typer.Argument(
            help="NAME, NAME@ALIAS or NAME/VERSION (models:/ forms too); default alias champion.",
            metavar="MODEL[@ALIAS]",
        ),
    ],
    *,
    input_path: Annotated[
        Path, typer.Option("--input", help="The rows to score: a .parquet or .csv file.")
    ],
    output_path: Annotated[
        Path, typer.Option("--output", help="Where the predictions go: .parquet or .csv.")
    ],
    no_log: Annotated[
        bool, typer.Option("--no-log", help="Do not log the predictions to the broker.")
    ] = False,
    keep: Annotated[
        list[str] | None,
        typer.Option(help="An input column copied to the output (an id), not given the model."),
    ] = None,
    chunk_rows: Annotated[
        int, typer.Option(min=1, max=1_000_000, help="Rows read, scored and written at a time.")
    ] = 65_536,
    unpickle: Annotated[
        bool, typer.Option("--unpickle", help="Allow a pickled or pyfunc model (runs its code).")
    ] = False,
    registry_url: Annotated[
        str | None,
        typer.Option(
            envvar="DRIFTLOOP_REGISTRY_URL",
            help="The registry (default: from <home>/up.json, else http://127.0.0.1:5001).",
        ),
    ] = None,
    bootstrap_servers: Annotated[
        str | None,
        typer.Option(
            envvar="DRIFTLOOP_KAFKA_BOOTSTRAP_SERVERS",
            help="The broker of the predictions topic (default: from <home>/up.json).",
        ),
    ] = None,
    home: Annotated[Path, _HOME_OPTION] = Path(".driftloop"),
) -> None:
    """Score a file with a registered model, a chunk at a time, as serving would: the
    model's files checked against the registry, inputs typed by its signature, every
    prediction logged to the predictions topic (route batch) for the monitor. A value
    that does not fit is an error naming its column and row, and no output is left."""
    from driftloop_cli.score import ScoreCall, ScoringUnavailable, run_score

    call = ScoreCall(
        model=model,
        input=input_path,
        output=output_path,
        home=home,
        registry_url=registry_url,
        bootstrap_servers=bootstrap_servers,
        log=not no_log,
        keep=tuple(keep or ()),
        chunk_rows=chunk_rows,
        unpickle=unpickle,
    )
    try:
        code = run_score(call)
    except ScoringUnavailable as exc:
        _fail(str(exc))
    if code:
        raise typer.Exit(code)


@app.command("init-pipeline")
def init_pipeline(
    name: Annotated[
        str, typer.Argument(help="Module name of the entry point, e.g. churn_pipeline.")
    ],
    *,
    directory: Annotated[
        Path, typer.Option("--dir", help="Where to write NAME.py.", file_okay=False)
    ] = Path(),
    force: Annotated[bool, typer.Option("--force", help="Overwrite NAME.py.")] = False,
) -> None:
    """Write NAME.py: a training entry point for code that is not scikit-learn, with
    the contract (JobContext in, TrainingOutput out, the gate's holdout) in its docstring;
    name it in a model's document as `training.entry_point: NAME:train`."""
    from importlib import resources

    if not name.isidentifier() or name.startswith("_"):
        _fail(f"{name!r} is not a Python module name (letters, digits, _)", EXIT_USAGE)
    target = directory / f"{name}.py"
    if target.exists() and not force:
        _fail(f"{target} exists (--force overwrites it)", EXIT_USAGE)
    template = resources.files("driftloop_cli").joinpath("templates/pipeline.py.txt")
    directory.mkdir(parents=True, exist_ok=True)
    target.write_text(template.read_text().replace("__NAME__", name))
    typer.echo(f"wrote {target}; declare it with `training: {{entry_point: {name}:train}}`")


get_app = typer.Typer(help="Read what the suite holds (as `kubectl get`).", no_args_is_help=True)
app.add_typer(get_app, name="get")


@get_app.command("models")
def get_models(
    name: Annotated[str | None, typer.Argument(help="One model; all when omitted.")] = None,
    *,
    output: Annotated[
        str, typer.Option("--output", "-o", help="table, yaml (the documents) or json.")
    ] = "table",
    home: Annotated[Path, _HOME_OPTION] = Path(".driftloop"),
    trainer_url: Annotated[str | None, _TRAINER_OPTION] = None,
) -> None:
    """The declared models: revision, features, label and entry point, or their documents."""
    from driftloop_cli.declarations import ApplyError, render
    from driftloop_cli.declarations import get_models as fetch
    from driftloop_cli.declarations import trainer_url as resolve_trainer

    if output not in ("table", "yaml", "json"):
        _fail("--output is table, yaml or json", EXIT_USAGE)
    try:
        models = fetch(resolve_trainer(trainer_url, home), home, name)
    except ApplyError as exc:
        _fail(str(exc))
    typer.echo(render(models, output), nl=False)


@app.command()
def config(
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the raw Markdown table (for docs).")
    ] = False,
) -> None:
    """Print every configuration variable of the installed services."""
    from driftloop_kit.settings import settings_table

    table = settings_table(d.settings_cls for d in _installed().values())
    if markdown:
        typer.echo(table, nl=False)
        return
    from rich.console import Console
    from rich.markdown import Markdown

    Console().print(Markdown(table))


@app.command()
def demo(
    *,
    home: Annotated[
        Path, typer.Option(help="State and logs of the demo's suite (wiped first).")
    ] = Path(".driftloop/demo"),
    free_ports: Annotated[
        bool,
        typer.Option(
            "--free-ports", help="Start the suite on free ports instead of the default ones."
        ),
    ] = False,
    rate: Annotated[float, typer.Option(help="Prediction requests per second.")] = 60.0,
    loop_timeout: Annotated[
        float, typer.Option(help="Seconds the loop has to close after the shift.")
    ] = 240.0,
    startup_timeout: Annotated[float, typer.Option(help="Seconds the suite has to start.")] = 240.0,
    timeline_json: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="Also write the timeline and the figures as JSON."),
    ] = None,
    keep_running: Annotated[
        bool, typer.Option("--keep-running", help="Leave the suite running at the end.")
    ] = False,
    world: Annotated[
        str,
        typer.Option(
            help="The world that plays: iris (flowers, a new site) or churn (subscribers, "
            "a new market; categorical columns, labels seconds late)."
        ),
    ] = "iris",
    attach: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="Drive a suite that already runs instead of starting one: a JSON file "
            '{"broker": "host:port", "services": {"tracking": url, ...}} '
            "(deploy/compose.suite.json: the compose stack's published ports). Set "
            "DRIFTLOOP_TOKEN to an admin token of that suite.",
        ),
    ] = None,
) -> None:
    """Run the closed loop end to end on embedded defaults; exit 0 only if it closed.

    Starts the suite, seeds the features, trains and promotes v1, sends traffic and
    labels, shifts the inputs, then waits for drift alert -> retraining -> evaluation
    -> v2 promoted -> serving answering with v2, printing each event as it happens.
    """
    from driftloop_cli.demo.run import DemoOptions, run_demo

    options = DemoOptions(
        home=home,
        free_ports=free_ports,
        rate=rate,
        loop_timeout=loop_timeout,
        startup_timeout=startup_timeout,
        timeline_json=timeline_json,
        keep_running=keep_running,
        world=world,
        attach=attach,
    )
    code = run_demo(options, echo=typer.echo)
    if code:
        raise typer.Exit(code)


@app.command()
def lineage(
    model: Annotated[
        str,
        typer.Argument(
            metavar="MODEL[@ALIAS|/VERSION]",
            help="A model (its whole log), or one version by alias or number.",
        ),
    ],
    registry_url: Annotated[
        str | None,
        typer.Option(
            "--registry-url",
            envvar="DRIFTLOOP_REGISTRY_URL",
            help="The registry. Default: the one in <home>/up.json, else http://127.0.0.1:5001.",
        ),
    ] = None,
    home: Annotated[
        Path,
        typer.Option(envvar="DRIFTLOOP_HOME", help="Folder of `driftloop up` (for up.json)."),
    ] = Path(".driftloop"),
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the registry's JSON answer as it is.")
    ] = False,
) -> None:
    """Show where a version came from and what happened to it since, with event ids.

    From the registry's lineage log, oldest first: feature views, run, alias moves, drift.
    """
    import json

    from driftloop_cli.credentials import auth_header
    from driftloop_cli.lineage import LineageError, fetch_lineage, format_lineage, parse_model_ref
    from driftloop_cli.lineage import registry_url as find_registry

    try:
        ref = parse_model_ref(model)
    except ValueError as exc:
        _fail(str(exc), EXIT_USAGE)
    try:
        body = fetch_lineage(find_registry(registry_url, home), ref, headers=auth_header(home))
    except LineageError as exc:
        _fail(exc.message, exc.exit_code)
    if as_json:
        typer.echo(json.dumps(body, indent=2, ensure_ascii=False))
        return
    typer.echo(format_lineage(body), nl=False)
