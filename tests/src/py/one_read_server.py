# An HTTP/1.1 server that reads each request with ONE recv, however large: it peeks at the
# head (MSG_PEEK reads are not captured), then takes head and body in a single
# recv(MSG_WAITALL), so the kernel's per-call capture cap is what decides what is copied.
# Logs "read <bytes>" per request; answers 200 "ok\n" and closes.
import socket, struct, sys, threading, time

host, port = sys.argv[1], int(sys.argv[2])
MAX_REQUEST = 8 << 20


def log(*parts):
    sys.stdout.write(" ".join(str(p) for p in parts) + "\n")
    sys.stdout.flush()


def serve(conn):
    with conn:
        conn.settimeout(10)
        head = b""
        while b"\r\n\r\n" not in head:
            if len(head) >= 65536:
                return
            if head:
                time.sleep(0.01)
            head = conn.recv(65536, socket.MSG_PEEK)
            if not head:
                return
        head = head[: head.index(b"\r\n\r\n") + 4]
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        total = len(head) + length
        if total > MAX_REQUEST:
            return
        # Blocking (a python timeout makes the fd non-blocking, and MSG_WAITALL then returns
        # what has arrived), bounded by the kernel's receive timeout instead.
        conn.settimeout(None)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 10, 0))
        data = conn.recv(total, socket.MSG_WAITALL)
        log("read", len(data))
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")


family = socket.AF_INET6 if ":" in host else socket.AF_INET
srv = socket.socket(family, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if family == socket.AF_INET6:
    srv.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
srv.bind((host, port))
srv.listen(16)
# Poll, then accept (as socketserver does): a call blocked in accept before the agent
# attached would hand it a connection whose accept it never saw.
srv.settimeout(0.5)
while True:
    try:
        c, _ = srv.accept()
    except socket.timeout:
        continue
    threading.Thread(target=serve, args=(c,), daemon=True).start()
