"""``python -m driftloop_cli``: the same as the ``driftloop`` command."""

from driftloop_cli.main import app

if __name__ == "__main__":
    app(prog_name="driftloop")
