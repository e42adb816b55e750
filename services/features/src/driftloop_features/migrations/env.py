from driftloop_bus import tables
from driftloop_kit.migrations import make_env

make_env([tables.metadata])
