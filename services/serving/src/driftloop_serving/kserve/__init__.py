"""KServe's V2 inference protocol over gRPC: code generated from
``proto/driftloop_serving/kserve/grpc_predict_v2.proto`` by ``make proto``, never edited.

Its messages live in a descriptor pool of their own (see
:mod:`driftloop_events.codegen`), so a process may import ``tritonclient.grpc`` too.
"""
