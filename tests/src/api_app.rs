//! A small multi-route JSON API (python stdlib `http.server`, HTTP/1.1 keep-alive) for the
//! API discovery tests: path ids, query parameters, JSON bodies, two authentication schemes,
//! and one undocumented endpoint that leaks email addresses.
//!
//! Routes (every response is `application/json` with a `Content-Length`):
//! - `GET /users/{id}` → `200 {"id","name","email"}`; needs `Authorization: Bearer <JWT>`
//!   (any token of three dot-separated segments), else `401`.
//! - `GET /users/{id}/orders` → `200 [{"id","item","quantity"}, ...]`; bearer as above.
//! - `GET /orders?status=open|closed&limit=N` → `200 [...]`; needs an `X-API-Key` header,
//!   else `401`; `limit` must be an integer (`400` otherwise); `status` is optional here
//!   (the tests' spec requires it).
//! - `POST /orders` with a JSON object body → `201 {"id","item","quantity","express","status"}`;
//!   needs `X-API-Key`; a body that is not a JSON object is a `400`.
//! - `GET /health` → `200 {"ok":true}`, no authentication.
//! - `GET /internal/export` → `200 [{"email":...}, ...]` ([`EXPORT_EMAILS`] addresses),
//!   no authentication: the deliberately undocumented, data-leaking endpoint.
//! - anything else → `404 {"error":"not found"}`.
//!
//! Ids are echoed back as given (numeric or UUID).

use std::net::SocketAddr;
use std::ops::Deref;

use anyhow::Result;

use crate::netns::Netns;
use crate::servers::{PyOptions, ScriptServer};

/// The email address in every `GET /users/{id}` answer.
pub const USER_EMAIL: &str = "alice@example.com";

/// The addresses `GET /internal/export` leaks, in order.
pub const EXPORT_EMAILS: [&str; 3] = ["alice@example.com", "bob@example.org", "carol@example.net"];

pub(crate) const API_APP: &str = r#"
import http.server, json, re, socket, sys
from urllib.parse import urlsplit, parse_qs

EXPORT = ["alice@example.com", "bob@example.org", "carol@example.net"]
JWT = re.compile(r"^Bearer [A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status, doc):
        body = json.dumps(doc, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(n) if n > 0 else b""

    def bearer(self):
        return JWT.match(self.headers.get("Authorization", "")) is not None

    def api_key(self):
        return bool(self.headers.get("X-API-Key", ""))

    def do_GET(self):
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        query = parse_qs(url.query, keep_blank_values=True)
        if parts == ["health"]:
            return self.reply(200, {"ok": True})
        if parts == ["internal", "export"]:
            return self.reply(200, [{"email": e} for e in EXPORT])
        if len(parts) == 2 and parts[0] == "users":
            if not self.bearer():
                return self.reply(401, {"error": "unauthorized"})
            return self.reply(200, {"id": parts[1], "name": "Alice", "email": "alice@example.com"})
        if len(parts) == 3 and parts[0] == "users" and parts[2] == "orders":
            if not self.bearer():
                return self.reply(401, {"error": "unauthorized"})
            return self.reply(200, [{"id": 1, "item": "book", "quantity": 2},
                                    {"id": 2, "item": "pen", "quantity": 10}])
        if parts == ["orders"]:
            if not self.api_key():
                return self.reply(401, {"error": "unauthorized"})
            limit = query.get("limit", ["10"])[0]
            if not re.fullmatch(r"-?[0-9]+", limit):
                return self.reply(400, {"error": "limit must be an integer"})
            status = query.get("status", ["open"])[0]
            orders = [{"id": i, "item": "book", "quantity": 1, "status": status}
                      for i in range(1, min(int(limit), 3) + 1)]
            return self.reply(200, orders)
        return self.reply(404, {"error": "not found"})

    def do_POST(self):
        url = urlsplit(self.path)
        raw = self.body()
        if url.path != "/orders":
            return self.reply(404, {"error": "not found"})
        if not self.api_key():
            return self.reply(401, {"error": "unauthorized"})
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            return self.reply(400, {"error": "expected a JSON object"})
        doc = dict(doc, id=1001, status="open")
        return self.reply(201, doc)

    def log_message(self, fmt, *args):
        pass

class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

def main():
    host, port = sys.argv[1], int(sys.argv[2])
    if ":" in host:
        Server.address_family = socket.AF_INET6
    with Server((host, port), Handler) as srv:
        srv.serve_forever()

main()
"#;

/// The API of this module's doc comment, run by python3 in a namespace (through a
/// [`crate::util::CommExe`] symlink when `opts.comm` is set, so `[capture] comms` can select it).
pub struct ApiApp(ScriptServer);

impl ApiApp {
    pub fn start(ns: &Netns, listen: SocketAddr, opts: PyOptions) -> Result<Self> {
        ScriptServer::start_python(
            ns,
            listen,
            &[],
            &opts,
            ("api_app.py", API_APP, "python API app"),
            None,
        )
        .map(Self)
    }
}

impl Deref for ApiApp {
    type Target = ScriptServer;

    fn deref(&self) -> &ScriptServer {
        &self.0
    }
}
