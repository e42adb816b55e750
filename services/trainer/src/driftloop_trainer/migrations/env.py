from driftloop_kit.migrations import make_env
from driftloop_trainer.adapters.tables import ALL_METADATA

make_env(list(ALL_METADATA))
