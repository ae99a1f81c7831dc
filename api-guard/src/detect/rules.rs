//! Every detection rule in one catalogue: its `rule_id`, [`Kind`], severity and a one-line
//! description. Detectors report a [`Rule`] from here ([`Finding::new`] takes one), and a
//! [`Rule`] can only be made in this module, by the `catalogue!` list that also fills [`ALL`]:
//! so every id a detector can emit is in [`ALL`], written once. docs/detection.md lists the
//! same table (a test compares them).
//!
//! Protocol rules: smuggling and injection primitives are high; anomalies that mostly signal
//! odd clients or probing are medium or low.
//!
//! [`Finding::new`]: super::Finding::new

use super::finding::{Kind, Severity};

/// One detection rule (see the module documentation).
#[derive(Debug, PartialEq, Eq)]
pub struct Rule {
    id: &'static str,
    kind: Kind,
    severity: Severity,
    description: &'static str,
}

impl Rule {
    /// The stable `rule_id` of findings and events, e.g. `sqli.union_select`.
    pub const fn id(&self) -> &'static str {
        self.id
    }

    pub const fn kind(&self) -> Kind {
        self.kind
    }

    /// The severity of every finding of this rule.
    pub const fn severity(&self) -> Severity {
        self.severity
    }

    /// One line for people: what the rule looks for.
    pub const fn description(&self) -> &'static str {
        self.description
    }
}

/// Defines each rule as a `pub const` and lists them all in [`ALL`], in order.
macro_rules! catalogue {
    ($($name:ident = $id:literal, $kind:ident, $severity:ident, $description:literal;)*) => {
        $(
            #[doc = $description]
            pub const $name: Rule = Rule {
                id: $id,
                kind: Kind::$kind,
                severity: Severity::$severity,
                description: $description,
            };
        )*
        /// Every rule, grouped by kind in [`Kind::ALL`]'s order.
        pub const ALL: &[Rule] = &[$($name),*];
    };
}

catalogue! {
    SQLI_LIBINJECTION = "sqli.libinjection", Sqli, Critical,
        "libinjection's SQL tokenizer and fingerprints (pure-Rust libinjectionrs), tried as is and in quote contexts";
    SQLI_UNION_SELECT = "sqli.union_select", Sqli, Critical,
        "`UNION [ALL/DISTINCT] SELECT` appending a query";
    SQLI_SELECT = "sqli.select", Sqli, Critical,
        "a `SELECT … FROM` subquery, a `HAVING` comparison, or an alias then `FROM`";
    SQLI_STACKED_QUERY = "sqli.stacked_query", Sqli, Critical,
        "a further statement after `;` (`DROP`, `ALTER`, `INSERT`, `SHUTDOWN`, `PROCEDURE ANALYSE`…)";
    SQLI_TIME_BASED = "sqli.time_based", Sqli, Critical,
        "`WAITFOR DELAY` / `WAITFOR TIME` (time-based blind probes)";
    SQLI_TAUTOLOGY = "sqli.tautology", Sqli, Critical,
        "comparisons built to be true or probe blind (`)like(`, `if(1=…`)";
    SQLI_QUOTE_TERMINATOR = "sqli.quote_terminator", Sqli, Critical,
        "an unbalanced quote closed off with `;` at the end of the value";
    SQLI_FUNCTION_CALL = "sqli.function_call", Sqli, Critical,
        "a call of a SQL-only function (`benchmark(`, `extractvalue(`, `concat_ws(`…)";
    SQLI_SCHEMA_PROBE = "sqli.schema_probe", Sqli, Critical,
        "catalogue tables probed (`information_schema`, `pg_catalog`, `mysql.user`…)";
    SQLI_FILE_ACCESS = "sqli.file_access", Sqli, Critical,
        "`INTO OUTFILE` / `INTO DUMPFILE` writing files";
    SQLI_EXEC = "sqli.exec", Sqli, Critical,
        "`EXEC` of `xp_`/`sp_` procedures, `master`, `IMMEDIATE` or a variable";
    SQLI_PG_CAST = "sqli.pg_cast", Sqli, Critical,
        "PostgreSQL casts (`password::int`, `'1'::bool`)";
    SQLI_JSON_OPERATOR = "sqli.json_operator", Sqli, Critical,
        "JSON operators after a quote (`'{` / `'[` with `@>`, `->`…)";
    SQLI_MYSQL_FLOAT = "sqli.mysql_float", Sqli, Critical,
        "MySQL float syntax used to glue keywords (`1.e(`, `1.e.`)";
    // High, not critical: some APIs legitimately take MongoDB-style queries.
    SQLI_NOSQL_OPERATOR = "sqli.nosql_operator", Sqli, High,
        "MongoDB query operators (`$ne`, `$where`…) as parameter names or JSON keys";
    XSS_LIBINJECTION = "xss.libinjection", Xss, High,
        "libinjection's HTML5 tokenizer: markup as text, in an attribute, after each quote";
    XSS_TAG = "xss.tag", Xss, High,
        "obfuscated script-capable tag names (`<f o r m`, `< x: script`, `+ADw-script`, `¼script¾`)";
    XSS_EVENT_HANDLER = "xss.event_handler", Xss, High,
        "an event-handler attribute (`onerror=`, `formaction=`) outside a tag";
    XSS_SCRIPT_URI = "xss.script_uri", Xss, High,
        "`javascript:` / `vbscript:` URIs, also with whitespace or entities inside";
    XSS_CSS = "xss.css", Xss, High,
        "CSS that runs script (`expression(`, `-moz-binding`, `behavior:`)";
    XSS_DOM_ACCESS = "xss.dom_access", Xss, High,
        "script reaching the DOM without a tag (`document.cookie`, `window[\"alert\"]`)";
    XSS_JS_CALL = "xss.js_call", Xss, High,
        "JavaScript calls reflected into script (`alert()`, `setTimeout(`, tagged templates)";
    XSS_JSFUCK = "xss.jsfuck", Xss, High,
        "JSFuck-style code built from `[]()!+`";
    XSS_SSI = "xss.ssi", Xss, High,
        "server-side include directives (`<!--#exec`, `<!--#include`, `<!--#echo`…)";
    TRAVERSAL_DOTDOT = "traversal.dotdot", PathTraversal, High,
        "`..` as a path segment, in every encoding";
    TRAVERSAL_SENSITIVE_FILE = "traversal.sensitive_file", PathTraversal, Critical,
        "well-known sensitive files (`/etc/passwd`, `.ssh/id_rsa`, `win.ini`, `.env`…)";
    TRAVERSAL_FILE_URI = "traversal.file_uri", PathTraversal, High,
        "`file:/` and `file://` URIs (also behind `url:` or `jar:`)";
    TRAVERSAL_RESTRICTED_FILE = "traversal.restricted_file", PathTraversal, High,
        "path segments naming hidden files (`/.env`, `/.git/config`), server logs or database dumps; a value naming a dump (`backup.sql.gz`)";
    TRAVERSAL_TEMP_WRITE = "traversal.temp_write", PathTraversal, High,
        "shell redirection into a world-writable directory (`>/tmp/x`, `>> /dev/shm/y`)";
    TRAVERSAL_NTFS_STREAM = "traversal.ntfs_stream", PathTraversal, High,
        "NTFS stream suffixes (`index.php::$DATA`, `:$I30:$INDEX_ALLOCATION`): source disclosure, extension-filter bypass";
    CMDI_SHELL = "cmdi.shell", CommandInjection, Critical,
        "a command word reached through shell syntax (quotes, escapes, `${IFS}`, globs, substitutions)";
    CMDI_SHELLSHOCK = "cmdi.shellshock", CommandInjection, Critical,
        "Shellshock function definitions (`() { :; };`)";
    CMDI_WINDOWS = "cmdi.windows", CommandInjection, Critical,
        "cmd.exe syntax (`for /f %a in (…) do …`, `if exist …`, `if a==b cmd`)";
    CMDI_GLOB = "cmdi.glob", CommandInjection, Critical,
        "commands or absolute paths spelled with shell globs (`wh[o]ami`, `/etc/pa[s]swd`)";
    SSTI_EXPRESSION = "ssti.expression", Ssti, High,
        "template expressions (`{{ }}`, `${ }`, `#{ }`, `<%= %>`) with calls or dunders; Jinja/Twig/Freemarker/Velocity directives";
    SSRF_METADATA = "ssrf.metadata", Ssrf, Critical,
        "cloud metadata and link-local addresses (169.254.169.254, fd00:ec2::254, metadata.google.internal…)";
    SSRF_LOOPBACK = "ssrf.loopback", Ssrf, High,
        "loopback targets in any spelling (`localhost`, `2130706433`, `0x7f000001`, `[::ffff:127.0.0.1]`, `http:127.0.0.1`) and the container's host (`host.docker.internal`, `host.containers.internal`)";
    // Low: inside clusters, internal targets in URLs are common (webhooks, callbacks).
    SSRF_PRIVATE = "ssrf.private", Ssrf, Low,
        "a URL to a private or internal target (RFC 1918, CGNAT, unique-local; `kubernetes.default`)";
    SSRF_PRIVATE_HOST = "ssrf.private_host", Ssrf, Low,
        "a bare private or internal host as a whole value (`host=10.0.0.5`); only with `ssrf_private_hosts` (off by default)";
    SSRF_SCHEME = "ssrf.scheme", Ssrf, High,
        "URL schemes that reach non-HTTP services (`gopher://`, `dict://`, `ldap://`…)";
    SSRF_RFI = "ssrf.rfi", Ssrf, Medium,
        "remote file inclusion shapes: a URL to a raw IP address, or ending in `?` (also slash-less or cut short: `http:evil/x?`, `ftp?`)";
    CODE_PHP = "code.php", CodeInjection, Critical,
        "PHP code: tags (also `<?xml:` posing as a declaration), dangerous and PHP-only calls, calls through variables, strings or brackets (`('sys'.'tem')(`), variable variables (`${'a'}`)";
    CODE_PHP_WRAPPER = "code.php_wrapper", CodeInjection, Critical,
        "PHP stream wrappers (`php://filter`, `phar://`, `expect://`…)";
    CODE_DATA_URI = "code.data_uri", CodeInjection, Critical,
        "a `data:` URI whose content (base64-decoded when marked so) is PHP code: remote code for `include`";
    CODE_PHP_UPLOAD = "code.php_upload", CodeInjection, High,
        "an upload named as a PHP script (`shell.php`, `a.phtml.`, `x.php5`) or a PHP session file (`sess_<id>`) in a multipart `filename` or an `X-Filename` header";
    CODE_PHP_OBJECT = "code.php_object", CodeInjection, Critical,
        "serialized PHP objects (`O:8:\"stdClass\":…`), gadget-chain carriers";
    CODE_JNDI = "code.jndi", CodeInjection, Critical,
        "Log4Shell `${jndi:…}` lookups, nested lookups resolved";
    CODE_OGNL = "code.ognl", CodeInjection, Critical,
        "OGNL expressions (`#_memberAccess`, `%{(#`, `@java.lang.`, `#context[`)";
    CODE_JAVA_EL = "code.java_el", CodeInjection, Critical,
        "Java EL / SpEL reaching the runtime (`T(java.`, `.getRuntime()`, `Class.forName(`, `ProcessBuilder`)";
    CODE_SPRING_CLASSLOADER = "code.spring_classloader", CodeInjection, Critical,
        "`class.module.classLoader` / `class.classLoader` parameters (Spring4Shell)";
    CODE_JAVA_DESERIALIZATION = "code.java_deserialization", CodeInjection, Critical,
        "Java serialized objects (`aced0005` in hex or base64)";
    CODE_JAVA_CLASS = "code.java_class", CodeInjection, Critical,
        "classes of the Java packages payloads reach for (`java.lang.`, `javax.naming.`, `sun.misc.`…; exceptions and errors excluded)";
    CODE_JAVA_GADGET = "code.java_gadget", CodeInjection, Critical,
        "Commons-Collections / Groovy gadget class names";
    CODE_NODE = "code.node", CodeInjection, Critical,
        "Node.js internals (`child_process`, `process.env`, `process.binding(`, `constructor.constructor(`, `new Function(`, console calls, React Flight `$1:constructor:constructor`)";
    CODE_PYTHON = "code.python", CodeInjection, Critical,
        "Python internals (`__import__(`, `__builtins__`, `__subclasses__(`, `os.system(`, `os.popen(`)";
    CODE_RUBY = "code.ruby", CodeInjection, Critical,
        "Ruby process calls (`Kernel.exec`, `Kernel.system`, `IO.popen(`, `Process.spawn(`)";
    CODE_PERL = "code.perl", CodeInjection, Critical,
        "Perl code interpolated into a string (`@{[ … ]}`)";
    CODE_SSI = "code.ssi", CodeInjection, Critical,
        "server-side include `exec` / `include` directives (`<!--#exec`, `<!--#include`)";
    CODE_INFINITE_LOOP = "code.infinite_loop", CodeInjection, High,
        "a constant-true loop (`while(true)`, `while(!0)`, `for(;;)`) for a server-side `eval` to hang on";
    CODE_PROTOTYPE_POLLUTION = "code.prototype_pollution", CodeInjection, High,
        "JavaScript prototype pollution (`__proto__`, `constructor.prototype`)";
    SESSION_ID_PARAMETER = "session.id_parameter", SessionFixation, Medium,
        "a framework's session cookie name (`JSESSIONID`, `PHPSESSID`, `connect.sid`…) as a query, form or JSON parameter with no or a foreign `Referer` (generic `sessionid`: foreign only)";
    SESSION_COOKIE_INJECTION = "session.cookie_injection", SessionFixation, High,
        "a value that makes a browser store a cookie (`.cookie=\"…; domain=…\"`, `<meta http-equiv=set-cookie>`)";
    LDAP_FILTER_INJECTION = "ldap.filter_injection", LdapInjection, High,
        "a value that closes an LDAP filter component and opens another (`x)(&)`, `*)!(sn=*`, `admin)(cn>=a`, or with the OR operator)";
    PROTOCOL_CL_TE = "protocol.cl_te", Protocol, High,
        "Content-Length and Transfer-Encoding together (request smuggling)";
    PROTOCOL_DUPLICATE_CL = "protocol.duplicate_cl", Protocol, High,
        "several Content-Length headers";
    PROTOCOL_INVALID_CL = "protocol.invalid_cl", Protocol, High,
        "a Content-Length that is not a plain decimal number";
    PROTOCOL_TE_OBFUSCATED = "protocol.te_obfuscated", Protocol, High,
        "Transfer-Encoding other than `chunked`, repeated, or with a mangled name";
    PROTOCOL_INVALID_HEADER_NAME = "protocol.invalid_header_name", Protocol, High,
        "a header name that is not an RFC 9110 token";
    PROTOCOL_INVALID_HEADER_VALUE = "protocol.invalid_header_value", Protocol, High,
        "a header value with CR, LF, NUL or other forbidden bytes";
    PROTOCOL_HEADER_INJECTION = "protocol.header_injection", Protocol, High,
        "CR/LF followed by a header, status or request line in the path, parameters or body (response splitting)";
    PROTOCOL_MULTIPLE_HOST = "protocol.multiple_host", Protocol, High,
        "several Host headers";
    PROTOCOL_NULL_BYTE = "protocol.null_byte", Protocol, High,
        "a NUL byte (raw or `%00`) in the path, parameters or headers";
    PROTOCOL_UNIX_SOCKET_TARGET = "protocol.unix_socket_target", Protocol, High,
        "a Unix socket path as a request target in a parameter";
    PROTOCOL_H2_PSEUDO_HEADERS = "protocol.h2_pseudo_headers", Protocol, High,
        "HTTP/2 pseudo-header fields repeated, unknown, after regular fields, or missing";
    PROTOCOL_H2_CONNECTION_HEADER = "protocol.h2_connection_header", Protocol, High,
        "an HTTP/1 connection-specific field (`transfer-encoding`, `connection`, `upgrade`, `te` other than `trailers`…) in HTTP/2: smuggling through a downgrade";
    PROTOCOL_H2_CONTENT_LENGTH = "protocol.h2_content_length", Protocol, High,
        "an HTTP/2 `content-length` that disagrees with the DATA sent (smuggling through a downgrade)";
    PROTOCOL_H2C_UPGRADE = "protocol.h2c_upgrade", Protocol, Medium,
        "an `Upgrade: h2c` request (h2c smuggling past proxies that forward the upgrade)";
    PROTOCOL_TE_HTTP10 = "protocol.te_http10", Protocol, Medium,
        "Transfer-Encoding on an HTTP/1.0 request";
    PROTOCOL_OVERSIZED_HEADERS = "protocol.oversized_headers", Protocol, Medium,
        "request head above `max_header_bytes` (16384) or more than `max_headers` (100) headers";
    PROTOCOL_OVERSIZED_BODY = "protocol.oversized_body", Protocol, Medium,
        "body (received or declared) above `max_body_bytes` (10 MiB)";
    PROTOCOL_UNINSPECTED_CONTENT = "protocol.uninspected_content", Protocol, Low,
        "request body bytes no detector saw (past the analysis limit, or lost to a capture gap); severity set by `[detect.uninspected] severity`";
    PROTOCOL_METHOD_UNKNOWN = "protocol.method_unknown", Protocol, Medium,
        "a method that is neither standard nor in `extra_methods`";
    PROTOCOL_HOST_INVALID = "protocol.host_invalid", Protocol, Medium,
        "a Host header that is no valid host[:port]";
    PROTOCOL_INVALID_RANGE = "protocol.invalid_range", Protocol, Medium,
        "malformed, reversed, too many or repeated `Range` byte ranges";
    PROTOCOL_REQUEST_RANGE = "protocol.request_range", Protocol, Medium,
        "the obsolete `Request-Range` header (range amplification)";
    PROTOCOL_RESTRICTED_HEADER = "protocol.restricted_header", Protocol, Medium,
        "a header listed in `restricted_headers` (default `proxy`, `lock-token`, `if`)";
    PROTOCOL_ENCODING_ABUSE = "protocol.encoding_abuse", Protocol, Medium,
        "invalid percent-escapes, `%uXXXX`, UTF-8 decoders disagree on (overlong, truncated), or `\\u0061`-style escapes of ASCII in query or form values";
    PROTOCOL_CONTROL_CHAR = "protocol.control_char", Protocol, Medium,
        "control bytes in the path, parameters or cookies";
    PROTOCOL_TOO_MANY_ARGS = "protocol.too_many_args", Protocol, Medium,
        "more query or form parameters than `max_args` (255)";
    PROTOCOL_ARG_NAME_TOO_LONG = "protocol.arg_name_too_long", Protocol, Medium,
        "a parameter name longer than `max_arg_name_bytes` (100)";
    PROTOCOL_MULTIPLE_CONTENT_TYPE = "protocol.multiple_content_type", Protocol, Medium,
        "several Content-Type headers";
    PROTOCOL_CONTENT_TYPE_INVALID = "protocol.content_type_invalid", Protocol, Medium,
        "a malformed Content-Type (media type or parameters)";
    PROTOCOL_CONTENT_TYPE_CONFUSION = "protocol.content_type_confusion", Protocol, Medium,
        "a Content-Type whose parameters parsers read differently (e.g. a second media type)";
    PROTOCOL_CHARSET = "protocol.charset", Protocol, Medium,
        "a charset other than the allowed ones in Content-Type";
    PROTOCOL_MULTIPART_NAME = "protocol.multipart_name", Protocol, Medium,
        "multipart `name` / `filename` values holding `\"`, `\\`, `;` or `=`";
    PROTOCOL_GET_WITH_BODY = "protocol.get_with_body", Protocol, Low,
        "a GET or HEAD request with a body";
    PROTOCOL_METHOD_OVERRIDE = "protocol.method_override", Protocol, Low,
        "method override through `X-HTTP-Method-Override` and similar headers or `_method`";
    PROTOCOL_HOST_MISSING = "protocol.host_missing", Protocol, Low,
        "no or an empty Host header";
    PROTOCOL_HOST_IP = "protocol.host_ip", Protocol, Low,
        "an IP address as Host (only with `flag_ip_host`; off by default)";
    PROTOCOL_CONNECTION_CONFLICT = "protocol.connection_conflict", Protocol, Low,
        "a repeated or contradictory Connection option (`close` with `keep-alive`)";
    PROTOCOL_COOKIE_V1 = "protocol.cookie_v1", Protocol, Low,
        "RFC 2965 cookies (`$Version=1`), which stacks parse differently";
    PROTOCOL_DOUBLE_ENCODING = "protocol.double_encoding", Protocol, Low,
        "double percent-encoding (`%2527`, `%25%37%33`)";
    PROTOCOL_CONTENT_TYPE_MISSING = "protocol.content_type_missing", Protocol, Low,
        "a request with a body but no Content-Type";
    PROTOCOL_ACCEPT_CHARSET = "protocol.accept_charset", Protocol, Low,
        "a charset parameter in Accept that parsers read differently";
    PROTOCOL_ACCEPT_ENCODING_INVALID = "protocol.accept_encoding_invalid", Protocol, Medium,
        "an Accept-Encoding element that is no content-coding name (`AA&AA&**A`: CVE-2022-21907, HTTP.sys)";
    PROTOCOL_EMPTY_HEADER = "protocol.empty_header", Protocol, Low,
        "an empty Accept or User-Agent header (hand-made requests; clients send a value)";
    PROTOCOL_INVALID_TARGET = "protocol.invalid_target", Protocol, Medium,
        "an HTTP/1 request target in none of the RFC 9112 forms (`/path`, `http://host/path`, `host:port` for CONNECT, `*` for OPTIONS), e.g. `http://host` without a path (CRS 920100)";
    PROTOCOL_INVALID_REQUEST_LINE = "protocol.invalid_request_line", Protocol, Medium,
        "an HTTP/1 request line the parser rejects: a version other than HTTP/1.0 or 1.1 (`HTTP/4.0`), none, or a target with spaces; the server answers an error and nothing after the line is read (CRS 920100, 920430)";
    PROTOCOL_UNFRAMED_BODY = "protocol.unframed_body", Protocol, Low,
        "an HTTP/1 POST, PUT or PATCH with a Content-Type but neither Content-Length nor Transfer-Encoding: servers read no body and parse what follows as the next request (CRS 920180)";
    PROTOCOL_CONTENT_RANGE_INVALID = "protocol.content_range_invalid", Protocol, Medium,
        "a request Content-Range that is not `<unit> <range>` (`bytes 0-99/200`, `bytes */200`; CRS 920450 forbids the header, resumable uploads need it)";
    PROTOCOL_CONTENT_ENCODING_WITHOUT_BODY = "protocol.content_encoding_without_body", Protocol, Low,
        "Content-Encoding on a request without a body (a coding of nothing: probing or a broken client; CRS 920450 forbids the header, compressed uploads need it)";
    PROTOCOL_HOST_LOCAL = "protocol.host_local", Protocol, Medium,
        "a Host naming a loopback, unspecified or link-local address (`127.0.0.1`, `[::1]`, `0.0.0.0`, `169.254.169.254`) from a peer that is not local or unknown: DNS rebinding, localhost-trust bypass (CRS 920350, narrowed); HTTP/2's `:authority` is judged the same (location `header::authority`)";
    JWT_ALG_NONE = "jwt.alg_none", Jwt, Critical,
        "an unsigned token (`alg: none`), with or without a signature";
    JWT_BAD_SIGNATURE = "jwt.bad_signature", Jwt, High,
        "a signature that does not verify, or no configured key for its alg/kid";
    JWT_DISALLOWED_ALG = "jwt.disallowed_alg", Jwt, High,
        "an algorithm not in `allowed_algs`";
    JWT_BAD_ISSUER = "jwt.bad_issuer", Jwt, High,
        "`iss` missing or not one of `issuers`";
    JWT_BAD_AUDIENCE = "jwt.bad_audience", Jwt, High,
        "`aud` missing or not one of `audiences`";
    JWT_EXPIRED = "jwt.expired", Jwt, Medium,
        "`exp` in the past (beyond `leeway_secs`)";
    JWT_NOT_YET_VALID = "jwt.not_yet_valid", Jwt, Medium,
        "`nbf` in the future (beyond `leeway_secs`)";
    JWT_MISSING_CLAIM = "jwt.missing_claim", Jwt, Medium,
        "a claim of `required_claims` missing";
    JWT_MALFORMED = "jwt.malformed", Jwt, Medium,
        "a token that does not parse (bad base64 or JSON, no alg, oversized, non-numeric exp/nbf)";
    AUTH_MISSING_CREDENTIALS = "auth.missing_credentials", MissingAuth, Medium,
        "no credential on a route (host, method, path with ids as `{id}`) where ≥ `min_authenticated_ratio` (95%) of ≥ `min_samples` (20) requests carried one";
    AUTH_KEY_SHARING = "auth.key_sharing", KeySharing, High,
        "one credential from more than `max_clients_per_credential` (5) client addresses in `window_secs` (600 s)";
    AUTH_KEY_SHARING_CLUSTER = "auth.key_sharing_cluster", KeySharing, High,
        "one credential from more than `max_clients_per_credential` (5) client addresses in a `window_secs` (600 s) window across all nodes (`[cluster]`; one event per window for the whole cluster)";
    AUTH_CREDENTIAL_STUFFING = "auth.credential_stuffing", CredentialStuffing, High,
        "more than `failure_threshold` (10) 401/403 answers to one client in `failure_window_secs` (60 s)";
    AUTH_CREDENTIAL_STUFFING_CLUSTER = "auth.credential_stuffing_cluster", CredentialStuffing, High,
        "more than `failure_threshold` (10) 401/403 answers to one client in a `failure_window_secs` (60 s) window across all nodes (`[cluster]`; one event per window for the whole cluster)";
    AUTH_DISTRIBUTED_STUFFING_CLUSTER = "auth.distributed_stuffing_cluster", CredentialStuffing, High,
        "failed logins (401/403) to one account (Basic user, or a login field of a form or JSON body) from more than `max_clients_per_username` (10) client addresses in a `failure_window_secs` (60 s) window across all nodes (`[cluster]`; one event per window for the whole cluster)";
    ABUSE_SCANNER_AGENT = "abuse.scanner_agent", Scanner, Medium,
        "a scanner or attack tool User-Agent (sqlmap, Nikto, Nmap, masscan, nuclei, ffuf, gobuster…; whole product tokens)";
    ABUSE_NOT_FOUND_BURST = "abuse.not_found_burst", Enumeration, Medium,
        "more than `not_found_threshold` (20) 404s to one client in `not_found_window_secs` (60 s)";
    ABUSE_ID_ENUMERATION = "abuse.id_enumeration", Bola, High,
        "more than `bola_threshold` (10) mostly consecutive numeric ids on one route from one client in `bola_window_secs` (60 s)";
    ABUSE_CLIENT_FLOOD = "abuse.client_flood", Flood, Medium,
        "one client above `client_rate` (100) requests per second over `flood_window_secs` (10 s)";
    ABUSE_ROUTE_FLOOD = "abuse.route_flood", Flood, High,
        "one route above `route_rate` (1000) requests per second over `flood_window_secs` (10 s)";
    PROMPT_INSTRUCTION_OVERRIDE = "prompt.instruction_override", PromptInjection, High,
        "model input ordering the model to drop its instructions (`ignore previous instructions` and paraphrases, chat-template tokens), weighted score ≥ `threshold` (6)";
    PROMPT_JAILBREAK_PERSONA = "prompt.jailbreak_persona", PromptInjection, High,
        "a role-play jailbreak template: a persona without rules or refusals (DAN, developer mode, `you are now…`), weighted score ≥ `threshold` (6)";
    PROMPT_SYSTEM_PROMPT_EXTRACTION = "prompt.system_prompt_extraction", PromptInjection, High,
        "model input asking for the system prompt or hidden instructions, weighted score ≥ `threshold` (6)";
    PROMPT_OBFUSCATED = "prompt.obfuscated", PromptInjection, High,
        "an injection found only after decoding base64/hex, ROT13, reversal, look-alike letters, leetspeak or hidden characters";
    PROMPT_SUSPICIOUS = "prompt.suspicious", PromptInjection, Medium,
        "model input with weaker injection or jailbreak evidence: score between `suspicious_threshold` (3) and `threshold` (6)";
    LLM_KEY_SHARING = "llm.key_sharing", LlmKeyAbuse, High,
        "one LLM API key answered (2xx) for more than `max_clients_per_key` (5) client addresses in `sharing_window_secs` (600 s)";
    LLM_KEY_SHARING_CLUSTER = "llm.key_sharing_cluster", LlmKeyAbuse, High,
        "one LLM API key answered for more than `max_clients_per_key` (5) client addresses in a `sharing_window_secs` (600 s) window across all nodes (`[cluster]`; one event per window for the whole cluster)";
    LLM_TOKEN_SPIKE = "llm.token_spike", LlmKeyAbuse, Medium,
        "an LLM key's tokens in `spike_window_secs` (60 s) above `spike_factor` (10) times its moving average over `baseline_secs` (3600 s) and at least `spike_min_tokens` (20000); judged once the key is known for `baseline_secs`";
    LLM_UNSEEN_MODEL = "llm.unseen_model", LlmKeyAbuse, Low,
        "an LLM key asking for a model it never used, after its first `model_learning_secs` (86400 s)";
    LLM_MODEL_ENUMERATION = "llm.model_enumeration", LlmKeyAbuse, High,
        "model lists (`/v1/models`, `/v1beta/models`, `/api/tags`…) asked by one client with more than `enumeration_max_keys` (3) distinct keys (no key counts as one) in `enumeration_window_secs` (600 s)";
    LLM_KEY_BRUTE_FORCE = "llm.key_brute_force", LlmKeyAbuse, High,
        "more than `brute_force_max_keys` (10) distinct keys answered 401/403 on LLM API paths for one client in `brute_force_window_secs` (600 s)";
    LLM_LEAK_SECRET_IN_PROMPT = "llm_leak.secret_in_prompt", LlmDataLeak, High,
        "API or cloud keys, private keys, JWTs or passwords in a prompt a local process sends to an AI provider of `llm.providers` (classes and counts only)";
    LLM_LEAK_PII_IN_PROMPT = "llm_leak.pii_in_prompt", LlmDataLeak, Medium,
        "email addresses, phone numbers, payment cards (Luhn) or national ids in a prompt a local process sends to an AI provider";
    LLM_LEAK_SECRET_IN_COMPLETION = "llm_leak.secret_in_completion", LlmDataLeak, High,
        "keys, private keys, JWTs or passwords in a completion a local model server returns";
    LLM_LEAK_PII_IN_COMPLETION = "llm_leak.pii_in_completion", LlmDataLeak, Medium,
        "personal data (email, phone, payment card, national id) in a completion a local model server returns";
    LLM_LEAK_CANARY = "llm_leak.canary", LlmDataLeak, Critical,
        "a canary of `canaries` (planted in a system prompt) in a completion: the system prompt leaked";
    ENCRYPTION_PLAINTEXT_CREDENTIAL = "encryption.plaintext_credential", Encryption, High,
        "a credential (`Authorization`, an API key header or parameter, a session cookie sent or set) in plaintext HTTP with a peer across the network";
    ENCRYPTION_PLAINTEXT_SENSITIVE_DATA = "encryption.plaintext_sensitive_data", Encryption, Medium,
        "sensitive data of `sensitive_classes` (payment card, national id, API key, private key, JWT, password) in a plaintext HTTP query or body with a peer across the network";
    ENCRYPTION_WEAK_TLS_VERSION = "encryption.weak_tls_version", Encryption, Medium,
        "a TLS connection that negotiated a version below TLS 1.2 (read from its ServerHello)";
    ENCRYPTION_WEAK_CIPHER = "encryption.weak_cipher", Encryption, Low,
        "a TLS connection whose cipher suite has no forward secrecy (RSA key transport, static DH, plain PSK) or a broken cipher (RC4, 3DES, NULL)";
}

/// The rule with this id.
pub fn by_id(id: &str) -> Option<&'static Rule> {
    ALL.iter().find(|r| r.id == id)
}

/// The rule catalogue as the Markdown table of docs/detection.md.
pub fn markdown_table() -> String {
    let mut s = String::from("| rule_id | kind | severity | description |\n|---|---|---|---|\n");
    for r in ALL {
        s.push_str(&format!(
            "| `{}` | `{}` | {} | {} |\n",
            r.id, r.kind, r.severity, r.description
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// The `rule_id` prefix of each kind's rules.
    fn prefix(kind: Kind) -> &'static str {
        match kind {
            Kind::Sqli => "sqli",
            Kind::Xss => "xss",
            Kind::PathTraversal => "traversal",
            Kind::CommandInjection => "cmdi",
            Kind::Ssti => "ssti",
            Kind::Ssrf => "ssrf",
            Kind::CodeInjection => "code",
            Kind::SessionFixation => "session",
            Kind::LdapInjection => "ldap",
            Kind::Protocol => "protocol",
            Kind::Jwt => "jwt",
            Kind::MissingAuth | Kind::KeySharing | Kind::CredentialStuffing => "auth",
            Kind::Scanner | Kind::Enumeration | Kind::Bola | Kind::Flood => "abuse",
            Kind::PromptInjection => "prompt",
            Kind::LlmKeyAbuse => "llm",
            Kind::LlmDataLeak => "llm_leak",
            Kind::Encryption => "encryption",
        }
    }

    #[test]
    fn ids_are_unique_and_well_formed() {
        let mut seen = HashSet::new();
        for r in ALL {
            assert!(seen.insert(r.id), "{} twice", r.id);
            let (p, name) = r.id.split_once('.').expect("prefix.name");
            assert_eq!(p, prefix(r.kind), "{}", r.id);
            assert!(
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                r.id
            );
            assert!(
                !r.description.is_empty() && !r.description.contains(['\n', '|']),
                "{}: one line, no table separator",
                r.id
            );
            assert_eq!(by_id(r.id), Some(r));
        }
        assert_eq!(ALL.len(), 152);
        assert_eq!(by_id("sqli.nope"), None);
    }

    #[test]
    fn grouped_by_kind_and_every_kind_has_rules() {
        let order: Vec<Kind> = ALL.iter().map(|r| r.kind).collect();
        let mut kinds = order.clone();
        kinds.dedup();
        assert_eq!(kinds, Kind::ALL);
    }

    /// docs/detection.md's rule table, row by row, is the catalogue: every rule documented
    /// with its kind and severity, no documented id missing from the catalogue.
    #[test]
    fn docs_table_matches_catalogue() {
        let doc = include_str!("../../../docs/detection.md");
        let (_, section) = doc.split_once("\n## Rules\n").expect("a Rules section");
        let section = section.split("\n## ").next().unwrap_or(section);
        let rows: Vec<[&str; 4]> = section
            .lines()
            .filter(|l| l.starts_with("| `"))
            .filter_map(|l| {
                let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
                let id = cells.first()?.strip_prefix('`')?.strip_suffix('`')?;
                id.contains('.').then_some(())?;
                Some([
                    id,
                    cells.get(1)?.trim_matches('`'),
                    cells.get(2)?,
                    cells.get(3)?,
                ])
            })
            .collect();
        for [id, kind, severity, _] in &rows {
            let r = by_id(id).unwrap_or_else(|| panic!("docs/detection.md: {id} is no rule"));
            assert_eq!(*kind, r.kind.as_str(), "docs/detection.md: kind of {id}");
            assert_eq!(
                *severity,
                r.severity.as_str(),
                "docs/detection.md: severity of {id}"
            );
        }
        for r in ALL {
            let n = rows.iter().filter(|row| row[0] == r.id).count();
            assert_eq!(n, 1, "docs/detection.md lists {} {n} times", r.id);
        }
        assert!(
            section.contains(&markdown_table()),
            "docs/detection.md's rule table is not the catalogue's; regenerate it with \
             `cargo test -p api-guard --lib rules::tests::print_table -- --ignored --nocapture`"
        );
    }

    /// Prints the table for docs/detection.md.
    #[test]
    #[ignore = "prints the docs table"]
    fn print_table() {
        print!("{}", markdown_table());
    }
}
