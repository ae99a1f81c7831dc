# A keep-alive HTTP/1.1 server that answers `GET /<any>?calls=N&size=S` with a head written in
# one send and a body of N sends of S bytes each: how a response is split into calls is then up
# to the test, not to python or TCP timing (blocking sends on a socket with a large send
# buffer return only once all their bytes are queued: one syscall each).
# Logs "head <bytes>" per response. With SPLIT_WRITES_READ=vectored, requests are read with
# recvmsg into two buffers, the first of 2 bytes: each read's bytes land in two iovecs.
import os, socket, sys, threading
from urllib.parse import urlsplit, parse_qs

host, port = sys.argv[1], int(sys.argv[2])
vectored = os.environ.get("SPLIT_WRITES_READ") == "vectored"


def read(conn):
    if not vectored:
        return conn.recv(65536)
    first, rest = bytearray(2), bytearray(65536)
    n = conn.recvmsg_into([first, rest])[0]
    return bytes(first[: min(n, 2)]) + bytes(rest[: max(n - 2, 0)])


def log(*parts):
    sys.stdout.write(" ".join(str(p) for p in parts) + "\n")
    sys.stdout.flush()


def serve(conn):
    with conn:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                if len(buf) > 65536:
                    return
                data = read(conn)
                if not data:
                    return
                buf += data
            head, _, buf = buf.partition(b"\r\n\r\n")
            target = head.split(b"\r\n")[0].split(b" ")[1].decode()
            query = parse_qs(urlsplit(target).query)
            calls = min(int(query.get("calls", ["1"])[0]), 1024)
            size = min(int(query.get("size", ["1"])[0]), 1 << 20)
            out = (
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                f"Content-Length: {calls * size}\r\n\r\n"
            ).encode()
            conn.sendall(out)
            log("head", len(out))
            body = b"x" * size
            for _ in range(calls):
                conn.sendall(body)


family = socket.AF_INET6 if ":" in host else socket.AF_INET
srv = socket.socket(family, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((host, port))
srv.listen(16)
# Poll, then accept: a call blocked in accept before the agent attached is never seen.
srv.settimeout(0.5)
while True:
    try:
        c, _ = srv.accept()
    except socket.timeout:
        continue
    c.settimeout(None)
    threading.Thread(target=serve, args=(c,), daemon=True).start()
