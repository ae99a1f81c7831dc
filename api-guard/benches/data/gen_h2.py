# Regenerate with: $API_GUARD_TOOLS_VENV/bin/python3 gen_h2.py . (the tools venv has h2).
# Records one HTTP/2 connection of 100 GET requests (curl-like headers, 1 KiB JSON answers)
# made with the h2 library in memory: the client's and the server's byte streams.
import h2.connection, h2.config, h2.events, json, sys
c = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
s = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False))
c.initiate_connection(); s.initiate_connection()
cli, srv = bytearray(), bytearray()
def pump():
    global cli, srv
    while True:
        a = c.data_to_send(); b = s.data_to_send()
        if not a and not b: return
        cli += a; srv += b
        for e in s.receive_data(a) if a else []:
            if isinstance(e, h2.events.RequestReceived):
                body = json.dumps({"id": e.stream_id, "items": ["x" * 40] * 20}).encode()[:1000].ljust(1000)
                s.send_headers(e.stream_id, [(":status", "200"), ("content-type", "application/json"), ("content-length", str(len(body))), ("server", "nginx/1.22.1"), ("date", "Sat, 05 Dec 2026 23:00:00 GMT")])
                s.send_data(e.stream_id, body, end_stream=True)
        for e in c.receive_data(b) if b else []:
            if isinstance(e, h2.events.DataReceived):
                c.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
pump()
for i in range(100):
    sid = c.get_next_available_stream_id()
    c.send_headers(sid, [(":method", "GET"), (":scheme", "https"), (":authority", "api.example.com"), (":path", "/v1/orders/%d?expand=items" % (1000 + i)), ("user-agent", "curl/7.88.1"), ("accept", "*/*"), ("authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln")], end_stream=True)
    pump()
open(sys.argv[1] + "/h2-client.bin", "wb").write(cli)
open(sys.argv[1] + "/h2-server.bin", "wb").write(srv)
print(len(cli), len(srv))
