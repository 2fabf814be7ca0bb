"""Server reflection under ``grpc.reflection.v1`` beside ``v1alpha``.

grpcio-reflection (up to 1.85, the newest release) serves only ``grpc.reflection.v1alpha.ServerReflection``;
grpcurl, ``buf curl`` and Postman ask ``grpc.reflection.v1`` first and fall back, newer tools may not fall
back. The v1 messages are v1alpha's with the package renamed (same messages, fields and numbers, so the same
bytes on the wire): the v1 method runs the v1alpha servicer with the v1alpha (de)serialisers. The v1 file
descriptor (v1alpha's, renamed) joins the descriptor pool, so reflection can describe the v1 service too.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2

V1ALPHA_SERVICE = reflection.SERVICE_NAME  # grpc.reflection.v1alpha.ServerReflection
SERVICE_NAME = "grpc.reflection.v1.ServerReflection"
METHOD = "ServerReflectionInfo"
_V1_FILE = "grpc/reflection/v1/reflection.proto"


def _register_v1_descriptor(pool: descriptor_pool.DescriptorPool) -> None:
    """Add grpc/reflection/v1/reflection.proto (v1alpha's file, renamed) to ``pool`` unless it is there."""
    try:
        pool.FindFileByName(_V1_FILE)
        return
    except KeyError:
        pass
    file = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(file)
    old, new = f".{file.package}.", ".grpc.reflection.v1."
    file.name, file.package = _V1_FILE, "grpc.reflection.v1"
    file.ClearField("options")  # v1alpha's language options (Java package and the like)
    for message in file.message_type:
        for field in message.field:
            if field.type_name.startswith(old):
                field.type_name = new + field.type_name[len(old) :]
    for service in file.service:
        for method in service.method:
            method.input_type = new + method.input_type[len(old) :]
            method.output_type = new + method.output_type[len(old) :]
    pool.Add(file)


def enable_server_reflection(service_names: Iterable[str], server: grpc.aio.Server) -> tuple[str, ...]:
    """Serve reflection v1alpha and v1 on ``server``, listing ``service_names`` and both reflection services;
    returns the names listed."""
    names = tuple(dict.fromkeys((*service_names, V1ALPHA_SERVICE, SERVICE_NAME)))
    _register_v1_descriptor(descriptor_pool.Default())
    reflection.enable_server_reflection(names, server)  # v1alpha
    servicer = reflection.aio.ReflectionServicer(names)
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, {METHOD: handler}),))
    return names
