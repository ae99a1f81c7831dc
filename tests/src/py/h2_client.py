# A raw HTTP/2 client (the sans-IO `h2` library over a plain socket: h2c with prior
# knowledge): python3 h2_client.py <host> <port> <plan>, plan = JSON list of phases, each a
# list of requests {"method", "path", "body": <bytes to send>, "headers": [[name, value]...]}.
#
# Prints {"ready": true} and waits for a line on stdin. Then for each phase: sends every
# request of the phase at once (all HEADERS, then the bodies: multiplexed streams), reads
# until each stream has ended, prints {"phase": i, "local_port", "streams": [...]} with per
# stream its id, method, path, status and exact body bytes each way, and waits for the next
# line on stdin before the next phase, on the SAME connection. The HPACK encoder indexes
# every header it sends (incremental indexing), so a phase repeating an earlier phase's
# header sends only a reference to the dynamic table (each stream lists such headers in
# "from_dynamic_table"). Exits after the last phase.
import json, socket, sys

import h2.config, h2.connection, h2.events


def main():
    host, port, plan = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
    print(json.dumps({"ready": True}), flush=True)
    sock = None
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    for phase, requests in enumerate(plan):
        if not sys.stdin.readline():
            sys.exit("stdin closed before phase %d" % phase)
        if sock is None:
            sock = socket.create_connection((host, port), timeout=10)
            conn.initiate_connection()
            sock.sendall(conn.data_to_send())
        streams = {}
        for req in requests:
            sid = conn.get_next_available_stream_id()
            body = b"b" * req.get("body", 0)
            headers = [
                (":method", req["method"]), (":scheme", "http"),
                (":authority", "%s:%d" % (host, port)), (":path", req["path"]),
            ] + [tuple(h) for h in req.get("headers", [])]
            if body:
                headers.append(("content-length", str(len(body))))
            # Which of these the encoder will send as references to its dynamic table.
            table = set(conn.encoder.header_table.dynamic_entries)
            indexed = [n for n, v in headers if (n.encode(), v.encode()) in table]
            conn.send_headers(sid, headers, end_stream=not body)
            streams[sid] = {"stream_id": sid, "method": req["method"], "path": req["path"],
                            "request_body_bytes": len(body), "status": None,
                            "response_body_bytes": 0, "ended": False, "body": body,
                            "from_dynamic_table": indexed}
        sock.sendall(conn.data_to_send())
        for sid, s in streams.items():
            body = s.pop("body")
            # Bodies are far below the initial 65,535-byte windows and the frame size.
            if body:
                conn.send_data(sid, body, end_stream=True)
        sock.sendall(conn.data_to_send())
        while not all(s["ended"] for s in streams.values()):
            data = sock.recv(65536)
            if not data:
                sys.exit("the server closed the connection")
            for event in conn.receive_data(data):
                s = streams.get(getattr(event, "stream_id", None))
                if isinstance(event, h2.events.ResponseReceived):
                    s["status"] = int(dict(event.headers)[b":status"])
                elif isinstance(event, h2.events.DataReceived):
                    s["response_body_bytes"] += len(event.data)
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    s["ended"] = True
                elif isinstance(event, h2.events.StreamReset):
                    sys.exit("stream %d reset: %r" % (event.stream_id, event.error_code))
                elif isinstance(event, h2.events.ConnectionTerminated):
                    sys.exit("connection terminated: %r" % event)
            out = conn.data_to_send()
            if out:
                sock.sendall(out)
        for s in streams.values():
            del s["ended"]
        print(json.dumps({"phase": phase, "local_port": sock.getsockname()[1],
                          "streams": list(streams.values())}), flush=True)
    conn.close_connection()
    sock.sendall(conn.data_to_send())
    sock.close()


main()
