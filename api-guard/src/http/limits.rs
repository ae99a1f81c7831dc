//! Memory and work limits applied to every HTTP connection.

/// Per-connection limits; every buffer kept by [`super::HttpConnection`] is bounded by these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Largest head (start line + header fields + final CRLF) accepted; a longer head is a
    /// parse error. Also bounds chunk-size lines and trailer sections, and the header text
    /// kept per message.
    pub max_header_bytes: usize,
    /// Prefix of each (de-chunked) body kept in memory and reported in the exchange.
    pub max_body_capture_bytes: usize,
    /// Requests that may await their responses at once; more drops the oldest.
    pub max_pipelined: usize,
    /// How much of each body some consumer reads: only that much of the captured prefix is
    /// copied (sizes, truncation, taps and scanners do not depend on it).
    pub bodies: BodyInterest,
}

/// Bytes of each body that some consumer of the exchange reads, decided from the running
/// configuration and the connection (see docs/development.md, "Who reads bodies"). Each is
/// capped by `max_body_capture_bytes`; the default keeps the whole captured prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyInterest {
    /// Of a request body, whatever its method.
    pub requests: usize,
    /// Of a `POST` request body (LLM API calls are POSTs): at least `requests`.
    pub post_requests: usize,
    /// Of a response body.
    pub responses: usize,
}

impl BodyInterest {
    /// Every body, up to `max_body_capture_bytes`.
    pub const ALL: Self = Self {
        requests: usize::MAX,
        post_requests: usize::MAX,
        responses: usize::MAX,
    };
    /// No body: nobody reads them.
    pub const NONE: Self = Self {
        requests: 0,
        post_requests: 0,
        responses: 0,
    };

    /// Bytes kept of a request body sent with `method`.
    #[must_use]
    pub fn request(&self, method: &str) -> usize {
        if method == "POST" {
            self.post_requests.max(self.requests)
        } else {
            self.requests
        }
    }
}

impl Default for BodyInterest {
    fn default() -> Self {
        Self::ALL
    }
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_header_bytes: 65_536,
            max_body_capture_bytes: 65_536,
            max_pipelined: 64,
            bodies: BodyInterest::ALL,
        }
    }
}

impl HttpLimits {
    /// Upper bound of [`super::HttpConnection::buffered_bytes`].
    ///
    /// Each direction's parser holds at most one head (or held-back bytes) and one body
    /// prefix. Each pending request keeps its start line and header text (together at most
    /// `max_header_bytes`), a copy of its `Host` value and a body prefix; at most one of
    /// them also holds a finished response (the server answered before the request body
    /// ended). That sums to less than `2 * (max_pipelined + 3) * (max_header_bytes +
    /// max_body_capture_bytes)`.
    #[must_use]
    pub fn max_buffered_bytes(&self) -> usize {
        self.max_pipelined
            .saturating_add(3)
            .saturating_mul(2)
            .saturating_mul(
                self.max_header_bytes
                    .saturating_add(self.max_body_capture_bytes),
            )
    }
}
