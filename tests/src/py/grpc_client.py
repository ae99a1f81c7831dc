# A grpcio client (insecure channel: HTTP/2 with prior knowledge) making four calls on one
# channel, so on one TCP connection: python3 grpc_client.py <host> <port> <K> <M>.
# Prints {"ready": true}, waits for a line on stdin (the test starts its agent then), makes
# the calls in order and prints one JSON line each, then {"done": ...}:
#   Unary         a 1000-byte request
#   ServerStream  the request b"<K>": K response messages
#   ClientStream  M request messages, message i (0-based) 200 + i bytes
#   Fail          a 10-byte request, NOT_FOUND (5) expected
# Per call: path, messages and bytes each way (message bytes and the wire body: 5 bytes of
# gRPC framing per message, no compression), grpc status code and details.
import json, sys

import grpc

SERVICE = "/apiguard.test.Echo/"


def report(path, sent, received, code, details):
    print(json.dumps({
        "path": path,
        "messages_in": len(sent), "messages_out": len(received),
        "request_bytes": sum(map(len, sent)), "response_bytes": sum(map(len, received)),
        "request_body_bytes": sum(5 + len(m) for m in sent),
        "response_body_bytes": sum(5 + len(m) for m in received),
        "status": code.value[0], "details": details,
        "responses": [m.decode() for m in received if len(m) < 64],
    }), flush=True)


def main():
    host, port, k, m = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    print(json.dumps({"ready": True}), flush=True)
    if not sys.stdin.readline():
        sys.exit("stdin closed before the go line")
    options = [
        ("grpc.enable_retries", 0),
        ("grpc.enable_http_proxy", 0),
        ("grpc.http2.bdp_probe", 0),
        ("grpc.keepalive_time_ms", 3600000),
    ]
    with grpc.insecure_channel("%s:%d" % (host, port), options=options) as channel:
        grpc.channel_ready_future(channel).result(timeout=10)

        path = SERVICE + "Unary"
        sent = [b"u" * 1000]
        reply, call = channel.unary_unary(path).with_call(sent[0], timeout=10)
        report(path, sent, [reply], call.code(), call.details())

        path = SERVICE + "ServerStream"
        sent = [str(k).encode()]
        stream = channel.unary_stream(path)(sent[0], timeout=10)
        received = list(stream)
        report(path, sent, received, stream.code(), stream.details())

        path = SERVICE + "ClientStream"
        sent = [b"c" * (200 + i) for i in range(m)]
        reply, call = channel.stream_unary(path).with_call(iter(sent), timeout=10)
        report(path, sent, [reply], call.code(), call.details())

        path = SERVICE + "Fail"
        sent = [b"f" * 10]
        try:
            channel.unary_unary(path)(sent[0], timeout=10)
            sys.exit("Fail did not fail")
        except grpc.RpcError as err:
            report(path, sent, [], err.code(), err.details())
    print(json.dumps({"done": True}), flush=True)


main()
