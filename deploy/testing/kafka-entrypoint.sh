#!/bin/sh
# The Kafka stand-in: tansu's broker for the compose network (PLAINTEXT, 9092,
# advertised as kafka:9092) and tansu's proxy for the host (9094, advertised as
# 127.0.0.1:9094: it rewrites the broker's address in metadata answers). tansu has
# one listener per process, so the two listeners of apache/kafka are two
# processes; when either exits the container exits and its restart policy acts.
# Storage is in memory: a restart empties the topics (the services re-create the
# topics they use; their outboxes keep what was not yet sent).
set -eu
: "${TANSU_ADVERTISED_URL:=tcp://kafka:9092}"
: "${TANSU_HOST_ADVERTISED_URL:=tcp://127.0.0.1:9094}"
: "${CLUSTER_ID:=driftloop}"
export RUST_LOG="${RUST_LOG:-warn}"

tansu broker --cluster-id "${CLUSTER_ID}" --listener-url tcp://0.0.0.0:9092 \
    --advertised-listener-url "${TANSU_ADVERTISED_URL}" --storage-engine memory://tansu/ &
broker=$!
tansu proxy --listener-url tcp://0.0.0.0:9094 \
    --advertised-listener-url "${TANSU_HOST_ADVERTISED_URL}" --origin-url tcp://127.0.0.1:9092 &
proxy=$!
trap 'kill -TERM "${broker}" "${proxy}" 2>/dev/null' TERM INT
# Either child exiting ends the container.
while kill -0 "${broker}" 2>/dev/null && kill -0 "${proxy}" 2>/dev/null; do
    sleep 1
done
kill -TERM "${broker}" "${proxy}" 2>/dev/null || true
exit 1
