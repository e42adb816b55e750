"""The example Feast repo used by the demo model (iris-classifier).

Rows arrive through the ``iris_push`` push source (HTTP ``/push`` or Kafka
``features.ingest``) and land in the ``iris_features`` feature view, online and
offline. Values older than the view's TTL are not served.
"""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, PushSource
from feast.types import Float64, String
from feast.value_type import ValueType

from driftloop_features.sources import batch_source

flower = Entity(
    name="flower",
    join_keys=["flower_id"],
    value_type=ValueType.INT64,
    description="One flower measured in the field.",
)

iris_source = batch_source(
    "iris_features", description="Every iris measurement pushed, with its event time."
)

iris_push = PushSource(
    name="iris_push",
    batch_source=iris_source,
    description="Where iris measurements are pushed (HTTP /push or Kafka features.ingest).",
)

iris_features = FeatureView(
    name="iris_features",
    entities=[flower],
    ttl=timedelta(days=30),
    schema=[
        Field(name="sepal_length", dtype=Float64, description="Sepal length (cm)."),
        Field(name="sepal_width", dtype=Float64, description="Sepal width (cm)."),
        Field(name="petal_length", dtype=Float64, description="Petal length (cm)."),
        Field(name="petal_width", dtype=Float64, description="Petal width (cm)."),
        Field(name="site", dtype=String, description="Where the flower was measured."),
    ],
    source=iris_push,
    online=True,
    description="Latest measurements of each flower.",
)

iris_classifier = FeatureService(
    name="iris_classifier",
    features=[iris_features[["sepal_length", "sepal_width", "petal_length", "petal_width"]]],
    description="The features the iris-classifier model is trained and served with.",
)
