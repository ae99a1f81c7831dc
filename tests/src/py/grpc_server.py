# A grpcio server (plaintext HTTP/2) with raw-bytes messages, no protoc:
# python3 grpc_server.py <host> <port> <root>. Service apiguard.test.Echo:
#   Unary         one message in, one out: b"got <n>" (n = bytes received)
#   ServerStream  one message in (the count K as ASCII digits), K messages out, message i
#                 (0-based) being 100 + i bytes of b"s"
#   ClientStream  M messages in, one out: b"<M> messages, <bytes> bytes"
#   Fail          one message in, aborts with NOT_FOUND (5), details "no such thing"
import sys
from concurrent import futures

import grpc

SERVICE = "apiguard.test.Echo"


def unary(request, context):
    return b"got %d" % len(request)


def server_stream(request, context):
    for i in range(int(request)):
        yield b"s" * (100 + i)


def client_stream(requests, context):
    count = total = 0
    for message in requests:
        count += 1
        total += len(message)
    return b"%d messages, %d bytes" % (count, total)


def fail(request, context):
    context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
        "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
    }
    # No ping-based BDP probing or keepalive: the connection carries the calls only.
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4),
        options=[("grpc.http2.bdp_probe", 0), ("grpc.keepalive_time_ms", 3600000)],
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    if server.add_insecure_port("%s:%d" % (host, port)) == 0:
        sys.exit("could not bind %s:%d" % (host, port))
    server.start()
    server.wait_for_termination()


main()
