# A threaded HTTP/1.1 server whose answers take time, for request-time verdict tests.
#   GET /slow...    answers 200 "done\n" after 2 s
#   GET /stream...  answers a text/event-stream of 50 events, one every 100 ms (5 s)
# Each answer's first byte is logged to stdout as "answer <path> <RFC 3339 UTC time>".
import datetime, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import socket

host, port = sys.argv[1], int(sys.argv[2])


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def log(*parts):
    sys.stdout.write(" ".join(str(p) for p in parts) + "\n")
    sys.stdout.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        try:
            if path == "/slow":
                time.sleep(2.0)
                log("answer", path, now())
                body = b"done\n"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif path == "/stream":
                log("answer", path, now())
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.flush()
                for i in range(50):
                    self.wfile.write(b"data: %d\n\n" % i)
                    self.wfile.flush()
                    time.sleep(0.1)
                self.close_connection = True
            else:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
        except (BrokenPipeError, ConnectionResetError):
            pass


class Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
    daemon_threads = True


Server((host, port), Handler).serve_forever()
