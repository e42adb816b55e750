"""Names the tracking service makes up: artifact locations and run names."""

from __future__ import annotations

import random

#: Scheme the mlflow client resolves to this service's artifact proxy
#: (``<tracking URI>/api/2.0/mlflow-artifacts/artifacts/<path>``).
ARTIFACTS_SCHEME = "mlflow-artifacts:"

_ADJECTIVES = (
    "able",
    "bold",
    "brave",
    "bright",
    "calm",
    "clever",
    "crisp",
    "daring",
    "eager",
    "fair",
    "fierce",
    "gentle",
    "glad",
    "grand",
    "keen",
    "kind",
    "lively",
    "loud",
    "lucky",
    "merry",
    "mighty",
    "nimble",
    "polite",
    "proud",
    "quick",
    "quiet",
    "rare",
    "sharp",
    "shy",
    "silent",
    "smart",
    "swift",
    "tidy",
    "vast",
    "wise",
    "witty",
    "zesty",
)
_NOUNS = (
    "ant",
    "bat",
    "bee",
    "bird",
    "cat",
    "cod",
    "colt",
    "crab",
    "crow",
    "deer",
    "doe",
    "dove",
    "eel",
    "elk",
    "finch",
    "fish",
    "fox",
    "frog",
    "goat",
    "hare",
    "hawk",
    "hen",
    "jay",
    "lark",
    "lynx",
    "mole",
    "moth",
    "newt",
    "owl",
    "ox",
    "ram",
    "seal",
    "slug",
    "snail",
    "stork",
    "swan",
    "toad",
    "trout",
    "wasp",
    "whale",
    "wolf",
    "wren",
    "yak",
)


def experiment_artifact_location(experiment_id: str) -> str:
    """Where an experiment's artifacts live, e.g. ``mlflow-artifacts:/3``."""
    return f"{ARTIFACTS_SCHEME}/{experiment_id}"


def run_artifact_uri(experiment_location: str, run_id: str) -> str:
    """Where a run's artifacts live, e.g. ``mlflow-artifacts:/3/<run_id>/artifacts``."""
    return f"{experiment_location.rstrip('/')}/{run_id}/artifacts"


def random_run_name() -> str:
    """A readable run name like MLflow's, e.g. ``bold-owl-417``."""
    rng = random.SystemRandom()
    return f"{rng.choice(_ADJECTIVES)}-{rng.choice(_NOUNS)}-{rng.randint(100, 999)}"
