# One GET on a fresh connection, reporting when each piece of the answer arrived, as JSON:
#   {"sent": time, "chunks": [[time, bytes], ...], "body": text, "closed": bool}
# Times are RFC 3339 UTC with microseconds. Stops at the server's close or at the deadline.
import datetime, json, socket, sys, time

host, port, path, deadline = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


family = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
s.settimeout(2)
s.connect((host, port))
request = "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, host)
s.sendall(request.encode())
sent = now()
end = time.monotonic() + deadline
chunks, body, closed = [], b"", False
while time.monotonic() < end:
    s.settimeout(max(0.01, end - time.monotonic()))
    try:
        data = s.recv(65536)
    except socket.timeout:
        break
    except OSError:
        break
    if not data:
        closed = True
        break
    chunks.append([now(), len(data)])
    body += data
s.close()
print(json.dumps({"sent": sent, "chunks": chunks, "body": body.decode("latin-1"), "closed": closed}))
