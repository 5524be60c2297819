//! HTTP/1.1 for the API listener: requests from bytes, responses to bytes.
//!
//! Owns [`parse_request`] (one request taken from the front of a connection's buffer, its body
//! framed by `Content-Length` or the chunked transfer coding), percent-decoding of the request
//! target, the response writer and the IMF-fixdate formatter. Like every codec it is pure: it
//! must never touch a socket, a file, the clock or the logger, never panic on any input, and
//! never allocate more than the [`ParseLimits`] allow.

pub mod client;

/// Default limit on the request head (request line and header fields), in bytes.
pub const HEAD_MAX: usize = 8 * 1024;
/// Default limit on the number of header fields in a request.
pub const HEADERS_MAX: usize = 64;
/// Default limit on a request body, in bytes (after de-chunking).
pub const BODY_MAX: usize = 1024 * 1024;

/// The HTTP/2 connection preface (RFC 9113 3.4); its first line is all that is checked.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n";
/// How much of [`H2_PREFACE`] must have arrived before it is told apart from a method "PRI".
const H2_PREFACE_MIN: usize = b"PRI * HTTP/2".len();
/// Longest chunk-size line (size, extensions), without its CRLF.
const CHUNK_LINE_MAX: usize = 64;

/// Limits applied by [`parse_request`].
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    /// Largest request head (leading empty lines, request line, header fields), in bytes.
    pub head_max: usize,
    /// Largest number of header fields.
    pub headers_max: usize,
    /// Largest body, in bytes after de-chunking.
    pub body_max: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self {
            head_max: HEAD_MAX,
            headers_max: HEADERS_MAX,
            body_max: BODY_MAX,
        }
    }
}

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method as sent, e.g. `GET`.
    pub method: String,
    /// The percent-decoded path, without the query, e.g. `/api/v1/clients/a b`.
    pub path: String,
    /// The percent-decoded query pairs in order; a piece without `=` has an empty value.
    pub query: Vec<(String, String)>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Header fields in order: names lower-cased, values as sent.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body, de-chunked when it was sent chunked.
    pub body: Vec<u8>,
}

impl Request {
    /// The value of the first header field called `name` (compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The first header field called `name` as UTF-8 with surrounding spaces and tabs
    /// removed; `None` when absent or not UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        let value = std::str::from_utf8(self.header(name)?).ok()?;
        Some(value.trim_matches([' ', '\t']))
    }

    /// Whether the connection stays open after this request: for HTTP/1.1 unless a
    /// `Connection` field carries the token `close`, for HTTP/1.0 only when one carries
    /// `keep-alive` (and none carries `close`).
    pub fn keep_alive(&self) -> bool {
        let has = |token: &[u8]| {
            values(&self.headers, "connection")
                .flat_map(|v| v.split(|&b| b == b','))
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
        };
        if has(b"close") {
            return false;
        }
        self.minor_version >= 1 || has(b"keep-alive")
    }

    /// The value of the first query parameter called `name` (compared exactly).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The media type of `Content-Type`, lower-cased and without parameters, e.g.
    /// `application/json`; `None` when absent, empty or not UTF-8.
    pub fn media_type(&self) -> Option<String> {
        let value = self.header_str("content-type")?;
        let media = value.split(';').next().unwrap_or_default().trim();
        if media.is_empty() {
            None
        } else {
            Some(media.to_ascii_lowercase())
        }
    }
}

/// The outcome of [`parse_request`] when the bytes so far are acceptable.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole request, which took `used` bytes of the buffer.
    Complete {
        /// The request.
        request: Request,
        /// Bytes of the buffer the request took, leading empty lines included.
        used: usize,
    },
    /// More bytes needed. `expect_continue` is true once the head is complete, the body is not,
    /// and the client sent `Expect: 100-continue` (the caller answers "HTTP/1.1 100 Continue"
    /// once).
    Partial {
        /// The head asks for a `100 Continue` before the body is sent.
        expect_continue: bool,
    },
}

/// Why a request cannot be served; each maps to the status the answer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    /// Malformed request line, header field, target, framing or encoding (400); the text
    /// names what was wrong.
    BadRequest(&'static str),
    /// The head is over its byte limit or has too many header fields (431).
    HeadTooLarge,
    /// The declared or accumulated body is over its limit (413).
    BodyTooLarge,
    /// An HTTP version other than 1.0 and 1.1, including the HTTP/2 preface (505).
    VersionNotSupported,
    /// A transfer coding other than exactly `chunked` (501).
    NotImplemented,
}

impl HttpError {
    /// The status code of the answer.
    pub fn status(self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::HeadTooLarge => 431,
            Self::BodyTooLarge => 413,
            Self::VersionNotSupported => 505,
            Self::NotImplemented => 501,
        }
    }

    /// A short lower-case description for the answer's body.
    pub fn detail(self) -> &'static str {
        match self {
            Self::BadRequest(what) => what,
            Self::HeadTooLarge => "request head too large",
            Self::BodyTooLarge => "request body too large",
            Self::VersionNotSupported => "http version not supported",
            Self::NotImplemented => "transfer coding not implemented",
        }
    }
}

/// Parses the request at the front of `buf`.
///
/// Leading empty lines are skipped and counted in `used`. Returns [`Parsed::Partial`] until the
/// whole request (head and body) is in `buf`; bytes after it (a pipelined request) are left
/// alone. A head still incomplete when `buf` holds more than `limits.head_max` bytes is
/// [`HttpError::HeadTooLarge`], a declared `Content-Length` over `limits.body_max` is
/// [`HttpError::BodyTooLarge`] as soon as the head is complete. A chunked body is also
/// [`HttpError::BodyTooLarge`] when its encoding (sizes, extensions, line ends, trailers) takes
/// more than `2 * body_max + head_max` bytes before its last chunk, so one whole request
/// never takes more than `3 * head_max + 2 * body_max + 128` bytes of the buffer.
pub fn parse_request(buf: &[u8], limits: ParseLimits) -> Result<Parsed, HttpError> {
    let window = buf.get(..limits.head_max).unwrap_or(buf);
    let line_start = window
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .and_then(|i| window.get(i..))
        .unwrap_or_default();
    let seen = line_start.len().min(H2_PREFACE.len());
    if seen >= H2_PREFACE_MIN && H2_PREFACE.get(..seen) == line_start.get(..seen) {
        return Err(HttpError::VersionNotSupported);
    }

    let slots = limits.headers_max.min(limits.head_max / 3 + 1);
    let mut fields = vec![httparse::EMPTY_HEADER; slots];
    let mut head = httparse::Request::new(&mut fields);
    let head_len = match head.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > limits.head_max => {
            return Err(HttpError::HeadTooLarge)
        }
        Ok(httparse::Status::Partial) => {
            return Ok(Parsed::Partial {
                expect_continue: false,
            })
        }
        Err(e) => return Err(head_error(e, line_start)),
    };
    let (Some(method), Some(target), Some(minor_version)) = (head.method, head.path, head.version)
    else {
        return Err(HttpError::BadRequest("request line"));
    };
    if minor_version > 1 {
        return Err(HttpError::VersionNotSupported);
    }
    if !target.starts_with('/') || target.contains('#') {
        return Err(HttpError::BadRequest("request target"));
    }
    let (raw_path, raw_query) = target.split_once('?').unwrap_or((target, ""));
    let headers: Vec<(String, Vec<u8>)> = head
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
        .collect();
    let mut request = Request {
        method: method.to_owned(),
        path: percent_decode(raw_path)?,
        query: parse_query(raw_query)?,
        minor_version,
        headers,
        body: Vec::new(),
    };

    let rest = buf.get(head_len..).unwrap_or_default();
    let partial = Parsed::Partial {
        expect_continue: minor_version == 1
            && request
                .header_str("expect")
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue")),
    };
    let body_used = match framing(&request.headers, minor_version, limits)? {
        Framing::Length(len) => match rest.get(..len) {
            Some(body) => {
                request.body = body.to_vec();
                len
            }
            None => return Ok(partial),
        },
        Framing::Chunked => match walk_chunked(rest, limits, None)? {
            Some((len, used)) => {
                let mut body = Vec::with_capacity(len);
                walk_chunked(rest, limits, Some(&mut body))?;
                request.body = body;
                used
            }
            None => return Ok(partial),
        },
    };
    Ok(Parsed::Complete {
        request,
        used: head_len.saturating_add(body_used),
    })
}

/// Maps an error from the head parser; `line` starts at the request line.
fn head_error(e: httparse::Error, line: &[u8]) -> HttpError {
    match e {
        httparse::Error::TooManyHeaders => HttpError::HeadTooLarge,
        httparse::Error::Version => {
            let line = line
                .split(|&b| b == b'\r' || b == b'\n')
                .next()
                .unwrap_or_default();
            let version = line.split(|&b| b == b' ').nth(2).unwrap_or_default();
            match version.strip_prefix(b"HTTP/") {
                Some([first, rest @ ..])
                    if first.is_ascii_digit()
                        && rest.iter().all(|&b| b.is_ascii_digit() || b == b'.') =>
                {
                    HttpError::VersionNotSupported
                }
                _ => HttpError::BadRequest("request line"),
            }
        }
        httparse::Error::HeaderName | httparse::Error::HeaderValue => {
            HttpError::BadRequest("header field")
        }
        httparse::Error::NewLine => HttpError::BadRequest("line ending"),
        _ => HttpError::BadRequest("request line"),
    }
}

/// The values of every header field called `name`, in order.
fn values<'h>(
    headers: &'h [(String, Vec<u8>)],
    name: &'static str,
) -> impl Iterator<Item = &'h [u8]> + 'h {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

/// How the body of a request is delimited.
enum Framing {
    /// Exactly this many bytes (zero when neither field is present).
    Length(usize),
    /// The chunked transfer coding.
    Chunked,
}

/// Decides the body framing from `Content-Length` and `Transfer-Encoding` (RFC 9112 6).
fn framing(
    headers: &[(String, Vec<u8>)],
    minor_version: u8,
    limits: ParseLimits,
) -> Result<Framing, HttpError> {
    let has_te = values(headers, "transfer-encoding").next().is_some();
    let has_cl = values(headers, "content-length").next().is_some();
    if has_te && has_cl {
        return Err(HttpError::BadRequest(
            "content-length with transfer-encoding",
        ));
    }
    if has_te {
        // An HTTP/1.0 message with a transfer coding has faulty framing (RFC 9112 6.1).
        if minor_version == 0 {
            return Err(HttpError::BadRequest("transfer-encoding in http/1.0"));
        }
        let mut codings = values(headers, "transfer-encoding")
            .flat_map(|v| v.split(|&b| b == b','))
            .map(<[u8]>::trim_ascii)
            .filter(|c| !c.is_empty());
        return match (codings.next(), codings.next()) {
            (None, _) => Err(HttpError::BadRequest("transfer-encoding")),
            (Some(c), None) if c.eq_ignore_ascii_case(b"chunked") => Ok(Framing::Chunked),
            _ => Err(HttpError::NotImplemented),
        };
    }
    let mut length: Option<usize> = None;
    for value in values(headers, "content-length") {
        let digits = value.trim_ascii();
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Err(HttpError::BadRequest("content-length"));
        }
        // A value too large for usize is over any body limit; saturate and reject below.
        let n = digits
            .iter()
            .try_fold(0usize, |acc, &d| {
                acc.checked_mul(10)?.checked_add(usize::from(d - b'0'))
            })
            .unwrap_or(usize::MAX);
        match length {
            Some(previous) if previous != n => {
                return Err(HttpError::BadRequest("conflicting content-length"))
            }
            _ => length = Some(n),
        }
    }
    let length = length.unwrap_or(0);
    if length > limits.body_max {
        return Err(HttpError::BodyTooLarge);
    }
    Ok(Framing::Length(length))
}

/// Where the next CRLF-terminated line ends.
enum Line {
    /// The line has this many bytes before its CRLF.
    Found(usize),
    /// No CRLF yet, and the line may still end within its limit.
    Partial,
    /// No CRLF within the limit.
    TooLong,
}

/// Finds the CRLF ending the line at the front of `bytes`, allowing `max` bytes before it.
fn line(bytes: &[u8], max: usize) -> Line {
    let scope = bytes.get(..max.saturating_add(2)).unwrap_or(bytes);
    match scope.windows(2).position(|w| w == b"\r\n") {
        Some(n) => Line::Found(n),
        None if bytes.len() >= max.saturating_add(2) => Line::TooLong,
        None => Line::Partial,
    }
}

/// Walks a chunked body (RFC 9112 7.1) at the front of `bytes`, appending the data to `sink`
/// when given. Returns the body length and the bytes the encoding took, or `None` when
/// incomplete.
fn walk_chunked(
    bytes: &[u8],
    limits: ParseLimits,
    mut sink: Option<&mut Vec<u8>>,
) -> Result<Option<(usize, usize)>, HttpError> {
    let wire_max = limits
        .body_max
        .saturating_mul(2)
        .saturating_add(limits.head_max);
    let mut pos = 0usize;
    let mut total = 0usize;
    loop {
        let rest = bytes.get(pos..).unwrap_or_default();
        let len = match line(rest, CHUNK_LINE_MAX) {
            Line::Found(n) => n,
            Line::Partial => return Ok(None),
            Line::TooLong => return Err(HttpError::BadRequest("chunk size")),
        };
        let size = chunk_size(rest.get(..len).unwrap_or_default())?;
        pos = pos.saturating_add(len + 2);
        total = total.saturating_add(size);
        if total > limits.body_max {
            return Err(HttpError::BodyTooLarge);
        }
        if size == 0 {
            break;
        }
        let rest = bytes.get(pos..).unwrap_or_default();
        let Some(data) = rest.get(..size) else {
            return Ok(None);
        };
        match rest.get(size..size.saturating_add(2)) {
            Some(b"\r\n") => {}
            Some(_) => return Err(HttpError::BadRequest("chunk data")),
            None if rest.get(size).is_some_and(|&b| b != b'\r') => {
                return Err(HttpError::BadRequest("chunk data"))
            }
            None => return Ok(None),
        }
        if let Some(out) = sink.as_deref_mut() {
            out.extend_from_slice(data);
        }
        pos = pos.saturating_add(size.saturating_add(2));
        if pos > wire_max {
            return Err(HttpError::BodyTooLarge);
        }
    }
    // The trailer section: header fields, skipped, then an empty line.
    let mut trailers = 0usize;
    loop {
        let rest = bytes.get(pos..).unwrap_or_default();
        let len = match line(rest, limits.head_max.saturating_sub(trailers)) {
            Line::Found(n) => n,
            Line::Partial => return Ok(None),
            Line::TooLong => return Err(HttpError::HeadTooLarge),
        };
        pos = pos.saturating_add(len + 2);
        if len == 0 {
            return Ok(Some((total, pos)));
        }
        if !trailer_field(rest.get(..len).unwrap_or_default()) {
            return Err(HttpError::BadRequest("trailer field"));
        }
        trailers = trailers.saturating_add(len + 2);
    }
}

/// Reads a chunk-size line without its CRLF: hex digits, optional extensions.
fn chunk_size(line: &[u8]) -> Result<usize, HttpError> {
    const BAD: HttpError = HttpError::BadRequest("chunk size");
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let (hex, ext) = line.split_at_checked(digits).ok_or(BAD)?;
    if hex.is_empty() {
        return Err(BAD);
    }
    let size = hex.iter().try_fold(0usize, |acc, &d| {
        let digit = char::from(d).to_digit(16)?;
        acc.checked_mul(16)?
            .checked_add(usize::try_from(digit).ok()?)
    });
    let size = size.ok_or(BAD)?;
    let ext = ext.trim_ascii_start();
    let ext_ok = ext.is_empty()
        || (ext.first() == Some(&b';')
            && ext.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7F)));
    if ext_ok {
        Ok(size)
    } else {
        Err(BAD)
    }
}

/// Whether `line` is a well-formed field line `name: value` (its content is not used).
fn trailer_field(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    let (name, value) = line.split_at(colon);
    !name.is_empty()
        && name.iter().all(|&b| is_tchar(b))
        && value
            .iter()
            .all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7F))
}

/// A token character (RFC 9110 5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Splits a raw query on `&`, then each piece on its first `=`, percent-decoding both sides.
fn parse_query(raw: &str) -> Result<Vec<(String, String)>, HttpError> {
    raw.split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            Ok((percent_decode(name)?, percent_decode(value)?))
        })
        .collect()
}

/// Decodes `%XX` escapes (either case of hex digit); `+` stays `+`. A `%` not followed by two
/// hex digits, or a result that is not UTF-8, is [`HttpError::BadRequest`].
pub fn percent_decode(s: &str) -> Result<String, HttpError> {
    if !s.contains('%') {
        return Ok(s.to_owned());
    }
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        let hi = bytes.next().and_then(|h| char::from(h).to_digit(16));
        let lo = bytes.next().and_then(|l| char::from(l).to_digit(16));
        let (Some(hi), Some(lo)) = (hi, lo) else {
            return Err(HttpError::BadRequest("percent-encoding"));
        };
        out.push(u8::try_from(hi * 16 + lo).unwrap_or_default());
    }
    String::from_utf8(out).map_err(|_| HttpError::BadRequest("utf-8 in target"))
}

/// A response to encode with [`encode_response`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The `Content-Type`, if the response has one.
    pub content_type: Option<&'static str>,
    /// Extra header fields, e.g. `("Allow", "GET, HEAD")`.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Send `Connection: close` and close the connection after writing.
    pub close: bool,
}

impl Response {
    /// A response with this status, no content type, no extra fields and an empty body.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            content_type: None,
            headers: Vec::new(),
            body: Vec::new(),
            close: false,
        }
    }

    /// A response with this status and an `application/json` body.
    pub fn json(status: u16, body: Vec<u8>) -> Self {
        Self {
            content_type: Some("application/json"),
            body,
            ..Self::new(status)
        }
    }

    /// The same response with one more header field.
    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}

/// The reason phrase of a status code; `Unknown` for codes this listener never sends.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Writes status line, `Date`, `Server`, `Content-Type` (if any and status not 204/1xx),
/// `Content-Length` (not for 1xx/204), extra headers, `Connection: close` when close,
/// `Connection: keep-alive` when !close and `http10` is true; then the body unless `head_only`
/// or 204.
///
/// A 304 is treated like a 204 (no content fields, no body). An empty `server` omits the
/// `Server` field. Control characters in field values are written as spaces, so a value can
/// never end the field early.
pub fn encode_response(
    r: &Response,
    head_only: bool,
    http10: bool,
    date: &str,
    server: &str,
    out: &mut Vec<u8>,
) {
    let bodiless = r.status < 200 || r.status == 204 || r.status == 304;
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(r.status.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason_phrase(r.status).as_bytes());
    out.extend_from_slice(b"\r\n");
    field(out, "Date", date);
    if !server.is_empty() {
        field(out, "Server", server);
    }
    if !bodiless {
        if let Some(content_type) = r.content_type {
            field(out, "Content-Type", content_type);
        }
        field(out, "Content-Length", &r.body.len().to_string());
    }
    for (name, value) in &r.headers {
        field(out, name, value);
    }
    if r.close {
        field(out, "Connection", "close");
    } else if http10 {
        field(out, "Connection", "keep-alive");
    }
    out.extend_from_slice(b"\r\n");
    if !head_only && !bodiless {
        out.extend_from_slice(&r.body);
    }
}

/// Writes one header field line, control characters in the value replaced by spaces.
fn field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend(
        value
            .bytes()
            .map(|b| if b < 0x20 || b == 0x7F { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

/// IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT", from seconds since the Unix epoch (pure
/// arithmetic, no std::time).
pub fn http_date(unix_secs: u64) -> String {
    let days = unix_secs / 86_400;
    let secs = unix_secs % 86_400;
    let (hour, minute, second) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let weekday = match (days + 4) % 7 {
        0 => "Sun",
        1 => "Mon",
        2 => "Tue",
        3 => "Wed",
        4 => "Thu",
        5 => "Fri",
        _ => "Sat",
    };
    // Civil date from a day count, in 400-year eras starting on 1 March 0000.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let (month, year_shift) = if mp < 10 { (mp + 3, 0) } else { (mp - 9, 1) };
    let year = era * 400 + yoe + year_shift;
    let month = match month {
        1 => "Jan",
        2 => "Feb",
        3 => "Mar",
        4 => "Apr",
        5 => "May",
        6 => "Jun",
        7 => "Jul",
        8 => "Aug",
        9 => "Sep",
        10 => "Oct",
        11 => "Nov",
        _ => "Dec",
    };
    format!("{weekday}, {day:02} {month} {year:04} {hour:02}:{minute:02}:{second:02} GMT")
}

#[cfg(test)]
mod tests;
