"""The gRPC server: grpc.aio, a spawned worker pool sized to the admission limit, health and reflection,
interceptors for bearer-token auth and Prometheus metrics, explicit limits, graceful drain on SIGTERM."""

from __future__ import annotations

import asyncio
import hmac
import logging
import multiprocessing
import signal
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from advisor._extras import requires_extra

with requires_extra("server", "the gRPC service (advisor.service)"):
    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection
    from prometheus_client import Counter, Gauge, Histogram, start_http_server

    from advisor.cache import cache_path
    from advisor.rules.loader import load_rules
    from advisor.service import operations as longrunning
    from advisor.service import reflection_v1, worker
    from advisor.service.servicer import SERVICE, Limits, LossAdvisorServicer
    from advisor.trials.executors import connect, executor_for
    from lossadvisor.v1 import advisor_pb2 as pb

LOG = logging.getLogger("advisor.service")
# After SIGTERM, health says NOT_SERVING for this long (within the grace) before the server stops listening.
DRAIN_S = 2.0
HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
CALLS = Counter("lossadvisor_calls_total", "Handled calls.", ["method", "code"])
LATENCY = Histogram("lossadvisor_call_seconds", "Call latency.", ["method"],
                    buckets=(0.001, 0.005, 0.02, 0.1, 0.5, 2, 10, 30, 120))  # fmt: skip
IN_FLIGHT = Gauge("lossadvisor_in_flight", "Calls in progress.", ["method"])
SHED = Counter("lossadvisor_shed_total", "Calls refused with RESOURCE_EXHAUSTED.", ["method"])


@dataclass(frozen=True)
class ServerConfig:
    """Server settings; ``advisor-cli serve --help`` documents each with its environment variable."""

    host: str = "127.0.0.1"
    port: int = 50051
    workers: int = 1
    max_message_mb: float = 16.0
    dataset_limit_mb: float = Limits.dataset_bytes / (1024 * 1024)
    token: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    metrics_port: int | None = None
    grace_s: float = 30.0
    max_connection_age_s: float = 600.0
    keepalive_s: float = 60.0
    cache: bool | str | Path = True  # the result cache (advisor.cache.cache_path): True the default file
    executor: str = "local"  # where the workers' calls run their trials (advisor.trials.executors)
    ray_address: str | None = None
    # Long-running operations (advisor.service.operations): the store file (True: operations-PORT.sqlite3 in
    # the user cache folder, in memory for port 0; False: in memory), how long finished ones are kept, how
    # many may wait for a worker.
    operations: bool | str | Path = True
    operations_ttl_s: float = longrunning.DEFAULT_TTL_S
    operations_queue: int = longrunning.DEFAULT_QUEUE


def _method(details: grpc.HandlerCallDetails) -> str:
    return details.method.rsplit("/", 1)[-1]


_HANDLER_KINDS = (
    ("unary_unary", False, grpc.unary_unary_rpc_method_handler),
    ("unary_stream", True, grpc.unary_stream_rpc_method_handler),
    ("stream_unary", False, grpc.stream_unary_rpc_method_handler),
    ("stream_stream", True, grpc.stream_stream_rpc_method_handler),  # reflection
)


def _wrap(
    handler: grpc.RpcMethodHandler, around: Callable[[Callable, bool], Callable]
) -> grpc.RpcMethodHandler:
    """The same handler with its behavior wrapped; ``around(behavior, streams_responses)``."""
    for kind, streaming, make in _HANDLER_KINDS:
        behavior = getattr(handler, kind)
        if behavior is not None:
            return make(
                around(behavior, streaming), handler.request_deserializer, handler.response_serializer
            )
    return handler


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Requires ``authorization: Bearer <token>`` on every call except health checks."""

    def __init__(self, token: str) -> None:
        self.expected = f"Bearer {token}".encode()

    async def intercept_service(
        self, continuation: Callable[..., Awaitable], details: grpc.HandlerCallDetails
    ):
        handler = await continuation(details)
        if handler is None or details.method.startswith(f"/{HEALTH_SERVICE}/"):
            return handler
        supplied = dict(details.invocation_metadata or ()).get("authorization", "")
        if hmac.compare_digest(str(supplied).encode(), self.expected):
            return handler

        def around(behavior: Callable, streaming: bool) -> Callable:
            async def refuse(request: Any, context: grpc.aio.ServicerContext) -> None:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")

            return refuse

        return _wrap(handler, around)


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    """Counts calls by method and code, times them, and tracks calls in flight."""

    async def intercept_service(
        self, continuation: Callable[..., Awaitable], details: grpc.HandlerCallDetails
    ):
        handler = await continuation(details)
        if handler is None:
            return handler
        method = _method(details)

        def record(context: grpc.aio.ServicerContext, started: float, failed: BaseException | None) -> None:
            code = context.code() if context.code() is not None else grpc.StatusCode.OK
            if isinstance(failed, asyncio.CancelledError):
                code = grpc.StatusCode.CANCELLED
            elif failed is not None and code == grpc.StatusCode.OK:
                code = grpc.StatusCode.UNKNOWN
            name = code.name if isinstance(code, grpc.StatusCode) else str(code)
            CALLS.labels(method, name).inc()
            if name == "RESOURCE_EXHAUSTED":
                SHED.labels(method).inc()
            LATENCY.labels(method).observe(time.perf_counter() - started)

        def around(behavior: Callable, streaming: bool) -> Callable:
            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                started, failed = time.perf_counter(), None
                IN_FLIGHT.labels(method).inc()
                try:
                    return await behavior(request, context)
                except BaseException as exc:  # recorded, then re-raised unchanged
                    failed = exc
                    raise
                finally:
                    IN_FLIGHT.labels(method).dec()
                    record(context, started, failed)

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
                started, failed = time.perf_counter(), None
                IN_FLIGHT.labels(method).inc()
                try:
                    async for item in behavior(request, context):
                        yield item
                except BaseException as exc:
                    failed = exc
                    raise
                finally:
                    IN_FLIGHT.labels(method).dec()
                    record(context, started, failed)

            return stream if streaming else unary

        return _wrap(handler, around)


def _handlers(servicer: LossAdvisorServicer) -> grpc.GenericRpcHandler:
    """Raw-bytes handlers (the servicer parses requests itself), serialized responses."""

    def unary(name: str) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(
            getattr(servicer, name), None, lambda m: m.SerializeToString()
        )

    handlers = {name: unary(name) for name in ("Recommend", "StartRecommend", "ListLosses", "ValidateSpec")}
    handlers["RecommendStream"] = grpc.unary_stream_rpc_method_handler(
        servicer.RecommendStream, None, lambda m: m.SerializeToString()
    )
    return grpc.method_handlers_generic_handler(SERVICE, handlers)


def _options(config: ServerConfig) -> list[tuple[str, Any]]:
    message_bytes = int(config.max_message_mb * 1024 * 1024)
    return [
        ("grpc.so_reuseport", 0),  # never share the port silently with another server
        ("grpc.max_receive_message_length", message_bytes),
        ("grpc.max_send_message_length", message_bytes),
        ("grpc.keepalive_time_ms", int(config.keepalive_s * 1000)),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.max_connection_age_ms", int(config.max_connection_age_s * 1000)),
        ("grpc.max_connection_age_grace_ms", int(config.grace_s * 1000)),
    ]


def _executor(config: ServerConfig) -> tuple[str, str | None]:
    """The workers' executor settings. With Ray, this process connects (or starts a local Ray instance) before
    the workers spawn, so a bad address or a missing extra fails the start, and the workers join that cluster
    (``auto``) instead of each starting its own."""
    executor_for(config.executor, config.ray_address)
    if config.executor != "ray":
        return ("local", None)
    connect(config.ray_address)
    LOG.info("trials run on Ray (%s)", config.ray_address or "a local Ray instance")
    return ("ray", config.ray_address if (config.ray_address or "").startswith("ray://") else "auto")


async def serve(config: ServerConfig, *, ready: Callable[[int], None] | None = None) -> None:
    """Run the server until SIGTERM or SIGINT, then drain: health NOT_SERVING, in-flight calls finish.

    The rules (built-in plus ``LOSS_ADVISOR_RULES``) are loaded first: a broken rules folder is the operator's
    to fix and fails the start (:class:`RuleLoadError`), never a client's request.
    """
    load_rules()
    cache = cache_path(config.cache)
    LOG.info("result cache: %s", cache or "off")
    executor = _executor(config)
    context = multiprocessing.get_context("spawn")  # never fork after torch and grpc are initialised
    manager = context.Manager()
    limits = Limits(dataset_bytes=int(config.dataset_limit_mb * 1024 * 1024), admission=config.workers,
                    queue=config.operations_queue)  # fmt: skip
    servicer = LossAdvisorServicer(
        lambda: ProcessPoolExecutor(
            config.workers, mp_context=context, initializer=worker.initialize, initargs=executor
        ),
        manager, limits, cache=False if cache is None else str(cache),
        operations=longrunning.open_store(config.operations, config.port, config.operations_ttl_s),
    )  # fmt: skip
    loop = asyncio.get_running_loop()
    await asyncio.gather(*(loop.run_in_executor(servicer.pool, worker.warm) for _ in range(config.workers)))
    interceptors: list[grpc.aio.ServerInterceptor] = [MetricsInterceptor()]
    if config.token:
        interceptors.insert(0, AuthInterceptor(config.token))
    server = grpc.aio.server(interceptors=interceptors, options=_options(config))
    server.add_generic_rpc_handlers((_handlers(servicer), longrunning.handlers(servicer.operations)))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    service_names = (
        pb.DESCRIPTOR.services_by_name["LossAdvisor"].full_name,
        HEALTH_SERVICE,
        longrunning.SERVICE,
        reflection.SERVICE_NAME,
    )
    reflection_v1.enable_server_reflection(service_names, server)  # v1alpha and v1
    address = f"{config.host}:{config.port}"
    if config.tls_cert and config.tls_key:
        credentials = grpc.ssl_server_credentials(
            [(config.tls_key.read_bytes(), config.tls_cert.read_bytes())]
        )
        port = server.add_secure_port(address, credentials)
    else:
        port = server.add_insecure_port(address)
    if config.metrics_port is not None:
        start_http_server(config.metrics_port, addr=config.host)
    for name in ("", SERVICE, longrunning.SERVICE):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    await server.start()
    if ready is not None:
        ready(port)
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    await _drain(server, servicer, health_servicer, config.grace_s)
    manager.shutdown()


async def _drain(
    server: grpc.aio.Server, servicer: LossAdvisorServicer, health_servicer: Any, grace_s: float
) -> None:
    """Shut down as load balancers expect: health answers NOT_SERVING (and new calls are refused with
    UNAVAILABLE) for a drain window, in-flight calls get the rest of the grace period, then are cancelled and
    their workers killed; the log says which calls finished and which were cancelled."""
    started = time.monotonic()
    servicer.draining = True
    await health_servicer.enter_graceful_shutdown()
    in_flight = servicer.in_flight
    await asyncio.sleep(min(DRAIN_S, grace_s))  # balancers poll health and stop sending
    await server.stop(max(grace_s - (time.monotonic() - started), 0.0))
    cancelled = servicer.in_flight  # the calls still running when the grace ran out
    await servicer.operations.stop()  # queued and running operations: the next start reports them ABORTED
    servicer.stop_workers()
    LOG.warning(
        "shut down in %.1f s (grace %.1f s): %d of %d calls in flight finished, %d cancelled at the end of the grace",
        time.monotonic() - started, grace_s, in_flight - cancelled, in_flight, cancelled,
    )  # fmt: skip
