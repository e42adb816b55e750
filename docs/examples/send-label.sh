#!/usr/bin/env bash
# Send one label (the ground truth of an earlier prediction) to driftloop with kcat,
# Debian's `kcat` package: a JSON CloudEvent in Kafka's binary mode (docs/events.md).
#
#   docs/examples/send-label.sh REQUEST_ID MODEL TRUTH [EVENT_TIME]
#
# BROKER (default 127.0.0.1:9092) and TOPIC (default labels) say where it goes: an
# Apache Kafka (compose publishes one on 127.0.0.1:9094). Debian's kcat (librdkafka
# 2.0.2) cannot talk to the embedded tansu broker of `driftloop up` (its ApiVersions
# answer fails to parse there); tests/integration/bus/test_json_producer.py sends this
# same record to it with aiokafka.
set -euo pipefail

request_id="${1:?request id of the prediction}"
model="${2:?registered model name}"
truth="${3:?the true value}"
event_time="${4:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}"

printf '{"requestId": "%s", "modelName": "%s", "groundTruth": {"stringValue": "%s"}, "eventTime": "%s"}\n' \
    "${request_id}" "${model}" "${truth}" "${event_time}" |
    kcat -P -b "${BROKER:-127.0.0.1:9092}" -t "${TOPIC:-labels}" -k "${request_id}" \
        -H "ce_specversion=1.0" \
        -H "ce_id=label-${request_id}" \
        -H "ce_source=/examples/kcat" \
        -H "ce_type=driftloop.monitor.label.recorded" \
        -H "ce_time=${event_time}" \
        -H "content-type=application/json"
