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
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    status: u16,
    message: String,
    data: Option<serde_json::Value>,
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
        }
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

impl std::error::Error for Error {}

/// `Result<T, nitro::Error>`: what handlers usually return.
pub type Result<T, E = Error> = std::result::Result<T, E>;
