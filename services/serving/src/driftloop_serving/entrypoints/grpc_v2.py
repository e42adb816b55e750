"""KServe's V2 inference protocol over gRPC (``inference.GRPCInferenceService``).

What ``tritonclient.grpc``, KServe's and MLServer's gRPC clients call, on its own port
(``grpc_port``, 8081 by default as KServe and MLServer have it), in the same event loop
as the HTTP app::

    import tritonclient.grpc as grpcclient
    client = grpcclient.InferenceServerClient("127.0.0.1:8081")
    headers = {"authorization": f"Bearer {token}"}
    client.is_model_ready("iris", headers=headers)
    x = grpcclient.InferInput("input-0", [1, 4], "FP64")
    x.set_data_from_numpy(np.array([[5.1, 3.5, 1.4, 0.2]]))
    client.infer("iris", [x], headers=headers).as_numpy("predict")

Every RPC scores and answers as REST's V2 routes do
(:mod:`driftloop_serving.entrypoints.routers.v2`): the same scorer, so the same hot
swap, canary and shadow routing and prediction log; the same typed inputs (by the
model's signature, from ``contents`` or ``raw_input_contents``) and outputs by name
(``predict``, ``predict_proba``). Errors are gRPC status codes with REST's message:
``INVALID_ARGUMENT`` for a request that does not fit (naming the column and the
row), ``NOT_FOUND`` for a model not served or a version not loaded, ``UNAVAILABLE``
while a served model has no version loaded yet.

Every RPC declares the role it needs (:func:`rpc`), checked against the
``authorization`` metadata (``Bearer <token>``) by the app's authenticator, as REST's
routes are; :class:`InferenceServicer` refuses to exist with an RPC that declares none.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from fastapi import FastAPI
from prometheus_client import Counter

from driftloop_kit.auth import Authenticator, Role, authorize
from driftloop_kit.errors import DriftloopError, Unavailable
from driftloop_serving.domain import grpc_tensors
from driftloop_serving.domain.errors import BadRequest
from driftloop_serving.domain.protocols import v2_response
from driftloop_serving.entrypoints.routers.v2 import infer_body, model_metadata_of
from driftloop_serving.kserve import grpc_predict_v2_pb2 as pb
from driftloop_serving.kserve import grpc_predict_v2_pb2_grpc as pb_grpc
from driftloop_serving.service_layer.scoring import Scorer, UnknownModel
from driftloop_serving.settings import ServingSettings

__all__ = ["GrpcServer", "InferenceServicer", "rpc"]

logger = logging.getLogger(__name__)

#: The service's RPCs, as its descriptor lists them.
SERVICE = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]

GRPC_REQUESTS = Counter(
    "driftloop_serving_grpc_requests_total",
    "V2 gRPC calls by method and status code.",
    ["method", "code"],
)

#: gRPC's status code for each HTTP status a DriftloopError carries.
_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.ALREADY_EXISTS,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    501: grpc.StatusCode.UNIMPLEMENTED,
    502: grpc.StatusCode.UNAVAILABLE,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}

#: The answer of the repository RPCs (Triton's model control).
_NOT_OFFERED = DriftloopError(
    "serving loads the version a model's alias points at: move the alias in the registry",
    status_code=501,
)

_Request = TypeVar("_Request")
_Response = TypeVar("_Response")
Method = Callable[[Any, _Request, grpc.aio.ServicerContext[Any, Any]], Awaitable[_Response]]


def _status(error: Exception) -> tuple[grpc.StatusCode, str]:
    if isinstance(error, UnknownModel):
        return grpc.StatusCode.NOT_FOUND, str(error)
    if isinstance(error, BadRequest):
        return grpc.StatusCode.INVALID_ARGUMENT, str(error)
    if isinstance(error, DriftloopError):
        return _CODES.get(error.status_code, grpc.StatusCode.INTERNAL), error.message
    raise error


def rpc(role: Role) -> Callable[[Method[_Request, _Response]], Method[_Request, _Response]]:
    """Declare the role an RPC needs; the caller's ``authorization`` metadata is checked
    before the RPC runs, and its errors become status codes with their message."""

    def declare(method: Method[_Request, _Response]) -> Method[_Request, _Response]:
        name = method.__name__

        @functools.wraps(method)
        async def checked(
            self: InferenceServicer,
            request: _Request,
            context: grpc.aio.ServicerContext[Any, Any],
        ) -> _Response:
            try:
                header = next(
                    (
                        str(value)
                        for key, value in context.invocation_metadata() or ()
                        if key == "authorization"
                    ),
                    None,
                )
                authorize(await self.authenticator.authenticate(header), role)
                answer = await method(self, request, context)
            except (UnknownModel, BadRequest, DriftloopError) as error:
                code, message = _status(error)
                GRPC_REQUESTS.labels(name, code.name).inc()
                await context.abort(code, message)
            GRPC_REQUESTS.labels(name, "OK").inc()
            return answer

        checked.driftloop_role = role  # type: ignore[attr-defined]
        return checked

    return declare


class InferenceServicer:
    """``GRPCInferenceService`` over the serving service's scorer.

    Args:
        scorer: The scorer REST's V2 routes use.
        authenticator: The app's authenticator (its revocations included).

    Raises:
        RuntimeError: An RPC of the service declares no role (or is missing).
    """

    def __init__(self, scorer: Scorer, authenticator: Authenticator) -> None:
        self.scorer = scorer
        self.authenticator = authenticator
        bare = [
            method.name
            for method in SERVICE.methods
            if not isinstance(
                getattr(getattr(self, method.name, None), "driftloop_role", None), Role
            )
        ]
        if bare:
            raise RuntimeError(f"gRPC methods without a declared role: {', '.join(bare)}")

    @rpc(Role.READER)
    async def ServerLive(
        self, request: pb.ServerLiveRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ServerLiveResponse:
        """The server is up."""
        return pb.ServerLiveResponse(live=True)

    @rpc(Role.READER)
    async def ServerReady(
        self, request: pb.ServerReadyRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ServerReadyResponse:
        """Ready when every served model has its champion loaded."""
        scorer = self.scorer
        return pb.ServerReadyResponse(ready=all(scorer.versions(n) for n in scorer.names()))

    @rpc(Role.READER)
    async def ModelReady(
        self, request: pb.ModelReadyRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ModelReadyResponse:
        """Whether the model's champion (or the version asked for) is loaded; NOT_FOUND
        for a model not served here."""
        try:
            model_metadata_of(self.scorer, request.name, request.version or None)
        except UnknownModel:
            if self.scorer.catalog.get(request.name) is None:
                raise
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=True)

    @rpc(Role.READER)
    async def ServerMetadata(
        self, request: pb.ServerMetadataRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ServerMetadataResponse:
        """Server name and version (no extension: binary tensors are REST's)."""
        return pb.ServerMetadataResponse(name="driftloop-serving", version="0.1.0")

    @rpc(Role.READER)
    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ModelMetadataResponse:
        """The model's loaded versions, flavor, inputs and outputs."""
        metadata = model_metadata_of(self.scorer, request.name, request.version or None)
        return grpc_tensors.metadata_response(metadata)

    @rpc(Role.READER)
    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ModelInferResponse:
        """Score with the champion (or the canary, per the model's traffic policy), or
        with the version asked for."""
        name, version = request.model_name, request.model_version or None
        body, binary = grpc_tensors.request_body(request)
        try:
            inferred = await infer_body(self.scorer, name, version, body, binary)
        except UnknownModel as error:
            if version is None and self.scorer.catalog.get(name) is not None:
                raise Unavailable(str(error)) from None
            raise
        answer = inferred.answer
        content, data = v2_response(
            model=name,
            version=answer.model.version,
            request_id=answer.request_id,
            predictions=answer.predictions,
            route=answer.route,
            probabilities=answer.probabilities,
            outputs=inferred.outputs,
            binary=frozenset(inferred.outputs),
        )
        if inferred.feature_service is not None:
            content["parameters"]["feature_service"] = inferred.feature_service
        if inferred.feature_times is not None:  # JSON in a string_param
            content["parameters"]["feature_event_times"] = inferred.feature_times
        return grpc_tensors.infer_response(content, data)

    @rpc(Role.DEPLOYER)
    async def RepositoryModelLoad(
        self, request: pb.RepositoryModelLoadRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.RepositoryModelLoadResponse:
        """Not offered: models follow their alias in the registry."""
        raise _NOT_OFFERED

    @rpc(Role.DEPLOYER)
    async def RepositoryModelUnload(
        self,
        request: pb.RepositoryModelUnloadRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> pb.RepositoryModelUnloadResponse:
        """Not offered: models follow their alias in the registry."""
        raise _NOT_OFFERED


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class GrpcServer:
    """The V2 gRPC server of a serving app: started and stopped by the app's lifespan
    (:meth:`start` and :meth:`stop` are its start-up and shut-down hooks).

    Args:
        settings: ``grpc_port``, ``host``; ``max_body_bytes`` bounds a request message
            as it bounds a REST body.
        scorer: The scorer REST's V2 routes use.
    """

    def __init__(self, settings: ServingSettings, scorer: Scorer) -> None:
        self.settings = settings
        self.scorer = scorer
        self.port: int | None = None
        self._server: grpc.aio.Server | None = None

    async def start(self, app: FastAPI) -> None:
        """Listen on ``grpc_port`` (the port taken is in ``app.state.grpc_port``).

        Raises:
            RuntimeError: The port cannot be bound (naming it and the setting).
        """
        settings = self.settings
        limit = min(settings.max_body_bytes, 2**31 - 1)
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", -1),
            ]
        )
        servicer = InferenceServicer(self.scorer, app.state.authenticator)
        pb_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
        address = _address(settings.host, settings.grpc_port)
        try:
            self.port = server.add_insecure_port(address)
        except RuntimeError as error:
            raise RuntimeError(
                f"the V2 gRPC server cannot listen on {address} ({error}); set "
                f"{settings.env_name('grpc_port')} to a free port (0: any), or "
                f"{settings.env_name('grpc_enabled')}=false"
            ) from None
        await server.start()
        self._server = server
        app.state.grpc_port = self.port
        logger.info("V2 gRPC inference on %s", _address(settings.host, self.port))

    async def stop(self, app: FastAPI) -> None:
        """Stop taking calls; calls under way have a second to finish."""
        if self._server is not None:
            await self._server.stop(grace=1.0)
            self._server = None
