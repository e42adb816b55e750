"""``driftloop demo``: the closed loop end to end (see :mod:`driftloop_cli.demo.run`)."""
