use std::fmt;

/// An HTTP error with a status, a message and optional JSON data.
///
/// Returned from a handler (directly or as the `Err` of a [`Result`](crate::Result)), it becomes
/// an error response that the server renders as JSON (`{"error":true,"status":404,"message":…}`)
/// or as an HTML page, following the request's `Accept` header.
///
/// ```
/// use nitro::{Error, Request, Result};
///
/// fn handler(req: &Request) -> Result<String> {
///     let id = req.param("id").ok_or_else(|| Error::bad_request("missing `id`"))?;
///     if id != "1" {
///         return Err(Error::not_found(format!("no user `{id}`")));
///     }
///     Ok("alice".to_string())
/// }
/// ```
///
/// # `?` on any error
///
/// Any `std::error::Error + Send + Sync + 'static` (and `anyhow::Error`) converts into an
/// `Error`, so `?` works on `parse`, `std::fs`, `serde_json` and most crates' results in a
/// handler returning [`Result`](crate::Result). Such an error is *unhandled*: the handler
/// answers `500`, the server logs it with its chain of causes and the route file, and its text
/// reaches the client only under `nitro dev` (a built server answers a generic message).
/// Errors made with [`Error::new`] and friends are meant for the client and are sent as written.
///
/// ```
/// use nitro::{Request, Result};
///
/// fn handler(req: &Request) -> Result<String> {
///     let n: i32 = req.query("n").unwrap_or_default().parse()?; // ParseIntError → 500
///     Ok(format!("{}", n * 2))
/// }
/// # let req = nitro::Request::builder("GET", "/?n=x").build();
/// # let err = handler(&req).unwrap_err();
/// # assert_eq!(err.status(), 500);
/// # assert!(err.is_unhandled());
/// ```
///
/// (Because of that conversion, `Error` itself does not implement `std::error::Error`, as
/// `anyhow::Error` does not.)
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    status: u16,
    message: String,
    data: Option<serde_json::Value>,
    /// Converted from another error by `?`: logged, and generic outside `nitro dev`.
    unhandled: bool,
}

impl Error {
    /// An error with `status` (400–599; anything else becomes 500) and `message`.
    pub fn new(status: u16, message: impl Into<String>) -> Error {
        let status = if (400..=599).contains(&status) {
            status
        } else {
            500
        };
        Error {
            status,
            message: message.into(),
            data: None,
            unhandled: false,
        }
    }

    /// An unhandled `500` from any error, with its chain of causes (`outer: inner`) as the
    /// message. This is what `?` does; call it for an error that is not `Send + Sync`.
    pub fn unhandled(error: &(dyn std::error::Error + 'static)) -> Error {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Error {
            unhandled: true,
            ..Error::internal(message)
        }
    }

    /// Whether this error came from another one (by `?` or [`Error::unhandled`]): the server
    /// logs it and shows its message only under `nitro dev`.
    pub fn is_unhandled(&self) -> bool {
        self.unhandled
    }

    /// `400 Bad Request`.
    pub fn bad_request(message: impl Into<String>) -> Error {
        Error::new(400, message)
    }

    /// `401 Unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Error {
        Error::new(401, message)
    }

    /// `403 Forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Error {
        Error::new(403, message)
    }

    /// `404 Not Found`.
    pub fn not_found(message: impl Into<String>) -> Error {
        Error::new(404, message)
    }

    /// `500 Internal Server Error`.
    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(500, message)
    }

    /// Attaches JSON data, sent as the `data` field of the error body.
    pub fn with_data(mut self, data: impl serde::Serialize) -> Error {
        self.data = serde_json::to_value(data).ok();
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The attached data, if any.
    pub fn data(&self) -> Option<&serde_json::Value> {
        self.data.as_ref()
    }

    /// The JSON body of this error: `{"error":true,"status":…,"message":…,"data":…}`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut body = serde_json::json!({
            "error": true,
            "status": self.status,
            "message": self.message,
        });
        if let Some(data) = &self.data {
            body["data"] = data.clone();
        }
        body
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl<E: Into<anyhow::Error>> From<E> for Error {
    fn from(error: E) -> Error {
        let error: anyhow::Error = error.into();
        Error {
            unhandled: true,
            // `{:#}` is the chain: `reading the limit: No such file or directory (os error 2)`.
            ..Error::internal(format!("{error:#}"))
        }
    }
}

/// `Result<T, nitro::Error>`: what handlers usually return.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<i32> {
        Ok(s.parse::<i32>()?)
    }

    fn read() -> Result<String> {
        Ok(std::fs::read_to_string("/nonexistent/nitro-test")?)
    }

    fn any() -> Result<()> {
        let inner = anyhow::anyhow!("disk full");
        Err(inner.context("saving the order"))?
    }

    #[test]
    fn question_mark_on_std_and_anyhow_errors_is_an_unhandled_500() {
        for (err, text) in [
            (parse("x").unwrap_err(), "invalid digit found in string"),
            (read().unwrap_err(), "No such file or directory"),
            (any().unwrap_err(), "saving the order: disk full"),
        ] {
            assert_eq!(err.status(), 500);
            assert!(err.is_unhandled());
            assert!(err.message().contains(text), "{err}");
        }
        assert!(!Error::internal("told").is_unhandled());
    }

    #[test]
    fn unhandled_keeps_the_chain() {
        let outer = Wrapped(std::io::Error::other("inner"));
        assert_eq!(Error::unhandled(&outer).message(), "wrapped: inner");
    }

    #[derive(Debug)]
    struct Wrapped(std::io::Error);
    impl fmt::Display for Wrapped {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("wrapped")
        }
    }
    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
}
