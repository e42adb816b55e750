"""The second world of the demo: subscribers of a service (churn-classifier).

Rows arrive through the ``churn_push`` push source (HTTP ``/push`` or Kafka
``features.ingest``) and land in the ``churn_features`` feature view, online and
offline. ``plan_tier`` (0 basic, 1 standard, 2 premium) and ``region`` are categorical
codes.
"""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, PushSource
from feast.types import Float64
from feast.value_type import ValueType

from driftloop_features.sources import batch_source

customer = Entity(
    name="customer",
    join_keys=["customer_id"],
    value_type=ValueType.INT64,
    description="One subscriber.",
)

churn_source = batch_source(
    "churn_features", description="Every subscriber observation pushed, with its event time."
)

churn_push = PushSource(
    name="churn_push",
    batch_source=churn_source,
    description="Where subscriber observations are pushed (HTTP /push or Kafka features.ingest).",
)

churn_features = FeatureView(
    name="churn_features",
    entities=[customer],
    ttl=timedelta(days=30),
    schema=[
        Field(name="tenure_months", dtype=Float64, description="Months since they subscribed."),
        Field(name="monthly_charges", dtype=Float64, description="What they pay each month."),
        Field(name="support_calls", dtype=Float64, description="Support calls last quarter."),
        Field(name="plan_tier", dtype=Float64, description="0 basic, 1 standard, 2 premium."),
        Field(name="region", dtype=Float64, description="Region code (0-3)."),
    ],
    source=churn_push,
    online=True,
    description="Latest observation of each subscriber.",
)

churn_v1 = FeatureService(
    name="churn_v1",
    features=[churn_features],
    description="The features the churn-classifier model is trained and served with.",
)
