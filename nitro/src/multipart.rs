//! Forms with files: `multipart/form-data` bodies, read with [`Request::multipart`].
//!
//! The server has already received the whole body (at most `[limits] max_body`, else `413`)
//! when the handler runs, so reading it is a plain call, the same in `fn` and `async fn`
//! handlers. Each part has a name, maybe a file name and a content type, and its bytes:
//!
//! ```
//! use nitro::{Request, Result};
//!
//! // routes/avatar.post.rs: <form method="post" enctype="multipart/form-data">
//! pub fn handler(req: &Request) -> Result<String> {
//!     let form = req.multipart()?; // not multipart, no boundary, a broken body → 4xx
//!     let user = form.text("user")?; // missing, or not UTF-8 → 400 naming `user`
//!     let photo = form.file("photo")?; // missing, or not a file → 400 naming `photo`
//!     Ok(format!(
//!         "{user}: {} ({}, {} bytes)",
//!         photo.file_name().unwrap_or_default(),
//!         photo.content_type().unwrap_or("?"),
//!         photo.bytes().len()
//!     ))
//! }
//! # let body = "--XyZ\r\n\
//! #     Content-Disposition: form-data; name=\"user\"\r\n\r\n\
//! #     ada\r\n\
//! #     --XyZ\r\n\
//! #     Content-Disposition: form-data; name=\"photo\"; filename=\"me.png\"\r\n\
//! #     Content-Type: image/png\r\n\r\n\
//! #     PNG!\r\n\
//! #     --XyZ--\r\n";
//! # let req = Request::builder("POST", "/avatar")
//! #     .header("content-type", "multipart/form-data; boundary=XyZ")
//! #     .body(body)
//! #     .build();
//! # assert_eq!(handler(&req).unwrap(), "ada: me.png (image/png, 4 bytes)");
//! # let req = Request::builder("POST", "/avatar").header("content-type", "text/plain").build();
//! # assert_eq!(handler(&req).unwrap_err().status(), 415);
//! ```
//!
//! The text fields of a form can also be read into a struct, as [`Request::form`] does for
//! forms without files: [`Multipart::form`].
//!
//! Parsing is [`multer`](https://docs.rs/multer)'s, over the bytes the server collected.

use crate::{Error, Request};
use serde::de::DeserializeOwned;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// The `Content-Type` of an HTML form with files.
const FORM_DATA: &str = "multipart/form-data";

impl Request {
    /// The body as `multipart/form-data` (an HTML form with `enctype="multipart/form-data"`,
    /// `fetch` with a `FormData`): every part, in order. `415` for another content type; `400`
    /// naming what is wrong for a missing or invalid boundary, a part without a name, or a body
    /// that is cut short or malformed. See [`multipart`](crate::multipart).
    pub fn multipart(&self) -> Result<Multipart, Error> {
        let content_type = self.header("content-type").unwrap_or("");
        let boundary = boundary(content_type)?;
        parse(self.body(), &boundary)
    }
}

/// A parsed `multipart/form-data` body: its parts in the order sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multipart {
    parts: Vec<Part>,
}

impl Multipart {
    /// Every part, in the order sent.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The parts, owned (to keep a file's bytes without a copy).
    pub fn into_parts(self) -> Vec<Part> {
        self.parts
    }

    /// The first part named `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Part> {
        self.parts.iter().find(|p| p.name == name)
    }

    /// Every part named `name` (a `<select multiple>`, `<input type="file" multiple>`).
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Part> + 'a {
        self.parts.iter().filter(move |p| p.name == name)
    }

    /// The text of field `name`: `400` naming the field when it is missing or not UTF-8.
    pub fn text(&self, name: &str) -> Result<&str, Error> {
        self.get(name)
            .ok_or_else(|| Error::bad_request(format!("multipart field `{name}` is missing")))?
            .text()
    }

    /// The file sent as `name`: `400` naming the field when it is missing or is a plain field
    /// (its part has no `filename`).
    pub fn file(&self, name: &str) -> Result<&Part, Error> {
        let part = self
            .get(name)
            .ok_or_else(|| Error::bad_request(format!("multipart file `{name}` is missing")))?;
        if part.file_name.is_none() {
            return Err(Error::bad_request(format!(
                "multipart field `{name}` is not a file (its part has no `filename`)"
            )));
        }
        Ok(part)
    }

    /// The text fields (the parts that are not files) deserialised into `T`, as
    /// [`Request::form`] reads a form without files: `400` naming the field that is missing or
    /// does not fit. For a field sent more than once, read the values with
    /// [`get_all`](Self::get_all).
    ///
    /// ```
    /// # let body = "--b\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nHi\r\n\
    /// #     --b\r\nContent-Disposition: form-data; name=\"public\"\r\n\r\ntrue\r\n--b--\r\n";
    /// # let req = nitro::Request::builder("POST", "/")
    /// #     .header("content-type", "multipart/form-data; boundary=b").body(body).build();
    /// #[derive(serde::Deserialize)]
    /// struct Upload { title: String, public: bool }
    ///
    /// let upload: Upload = req.multipart()?.form()?;
    /// # assert_eq!((upload.title.as_str(), upload.public), ("Hi", true));
    /// # Ok::<(), nitro::Error>(())
    /// ```
    pub fn form<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let mut encoded = form_urlencoded::Serializer::new(String::new());
        for part in self.parts.iter().filter(|p| p.file_name.is_none()) {
            encoded.append_pair(&part.name, part.text()?);
        }
        crate::extract::urlencoded(encoded.finish().as_bytes())
            .map_err(|e| Error::bad_request(format!("multipart field {e}")))
    }
}

impl IntoIterator for Multipart {
    type Item = Part;
    type IntoIter = std::vec::IntoIter<Part>;

    fn into_iter(self) -> Self::IntoIter {
        self.parts.into_iter()
    }
}

impl<'a> IntoIterator for &'a Multipart {
    type Item = &'a Part;
    type IntoIter = std::slice::Iter<'a, Part>;

    fn into_iter(self) -> Self::IntoIter {
        self.parts.iter()
    }
}

/// One part of a `multipart/form-data` body: a field, or a file when it has a file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    name: String,
    file_name: Option<String>,
    content_type: Option<String>,
    headers: Vec<(String, String)>,
    data: Vec<u8>,
}

impl Part {
    /// The field name (`name` in its `Content-Disposition`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file name the client sent (`filename`), for a file. It is the client's choice:
    /// never use it as a path on the server as it is.
    pub fn file_name(&self) -> Option<&str> {
        self.file_name.as_deref()
    }

    /// Whether this part is a file (it has a file name).
    pub fn is_file(&self) -> bool {
        self.file_name.is_some()
    }

    /// The part's `Content-Type` (`image/png`), if it has one.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// The first value of the part's header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header of the part, names in lower case.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The part's content.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// The part's content, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.data
    }

    /// The part's content as text: `400` naming the field when it is not UTF-8.
    pub fn text(&self) -> Result<&str, Error> {
        std::str::from_utf8(&self.data).map_err(|e| {
            Error::bad_request(format!(
                "multipart field `{}` is not valid UTF-8: {e}",
                self.name
            ))
        })
    }
}

/// The boundary of a `multipart/form-data` content type: `415` for another type, `400` when
/// it has no usable boundary.
fn boundary(content_type: &str) -> Result<String, Error> {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case(FORM_DATA) {
        return Err(Error::new(
            415,
            format!("expected a `{FORM_DATA}` body, not `{content_type}`"),
        ));
    }
    let boundary = match multer::parse_boundary(content_type) {
        Ok(boundary) => boundary,
        Err(multer::Error::NoBoundary) => {
            return Err(Error::bad_request(format!(
                "the content type `{content_type}` has no `boundary` parameter"
            )));
        }
        Err(e) => {
            return Err(Error::bad_request(format!(
                "the content type `{content_type}` is invalid: {e}"
            )));
        }
    };
    // RFC 2046: 1 to 70 characters, none of them a control character.
    if boundary.is_empty() || boundary.len() > 70 || boundary.chars().any(|c| c.is_control()) {
        return Err(Error::bad_request(format!(
            "the multipart boundary `{boundary}` is invalid: it must be 1 to 70 printable characters"
        )));
    }
    Ok(boundary)
}

/// Parses `body` into its parts.
fn parse(body: &[u8], boundary: &str) -> Result<Multipart, Error> {
    let stream = Whole(Some(body.to_vec()));
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut parts = Vec::new();
    while let Some(field) = complete(multipart.next_field()).map_err(|e| invalid(e, boundary))? {
        let index = parts.len() + 1;
        let name = field.name().map(str::to_owned).ok_or_else(|| {
            Error::bad_request(format!(
                "multipart part {index} has no `name` in its `content-disposition` header"
            ))
        })?;
        let file_name = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(|m| m.to_string());
        let headers = field
            .headers()
            .iter()
            .map(|(k, v)| {
                let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (k.as_str().to_owned(), value)
            })
            .collect();
        let data = complete(field.bytes()).map_err(|e| match e {
            // The body ended inside this part.
            multer::Error::IncompleteStream => Error::bad_request(format!(
                "multipart field `{name}` is cut short (the body ends inside it)"
            )),
            e => invalid(e, boundary),
        })?;
        parts.push(Part {
            name,
            file_name,
            content_type,
            headers,
            data: data.into(),
        });
    }
    Ok(Multipart { parts })
}

/// A `400` for what multer found wrong, in our words where it names a field.
fn invalid(error: multer::Error, boundary: &str) -> Error {
    let message = match error {
        multer::Error::IncompleteFieldData {
            field_name: Some(name),
        } => format!("multipart field `{name}` is cut short (the body ends inside it)"),
        multer::Error::IncompleteStream => {
            format!(
                "the multipart body is cut short: it ends before its closing boundary `--{boundary}--`"
            )
        }
        multer::Error::IncompleteHeaders | multer::Error::ReadHeaderFailed(_) => {
            "the headers of a multipart part are malformed or cut short".to_owned()
        }
        other => format!("invalid multipart body: {other}"),
    };
    Error::bad_request(message)
}

/// The collected body as a stream of one chunk, always ready.
struct Whole(Option<Vec<u8>>);

impl futures_core::Stream for Whole {
    type Item = Result<Vec<u8>, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.0.take().map(Ok))
    }
}

/// Runs a future of the parser to its end. Its only input is [`Whole`], which is always ready,
/// so the parser never waits; a future that did would be a bug, reported as an error rather
/// than a hang.
fn complete<T>(future: impl Future<Output = multer::Result<T>>) -> multer::Result<T> {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..64 {
        if let Poll::Ready(result) = future.as_mut().poll(&mut cx) {
            return result;
        }
    }
    Err(multer::Error::StreamReadFailed(
        "the multipart parser waited for more input than the collected body".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    const BOUNDARY: &str = "----nitro7MA4YWxk";

    fn request(content_type: &str, body: impl Into<Vec<u8>>) -> Request {
        Request::builder("POST", "/upload")
            .header("content-type", content_type)
            .body(body)
            .build()
    }

    fn form_data(body: impl Into<Vec<u8>>) -> Request {
        request(
            &format!("multipart/form-data; boundary={BOUNDARY}"),
            body.into(),
        )
    }

    /// A text part, a file part with binary bytes (CR LF and a fake boundary inside), and a
    /// second value of the text field.
    fn good_body() -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n\
                 Holiday ✓\r\n\
                 --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"beach.png\"\r\n\
                 Content-Type: image/png\r\nX-Extra: yes\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(b"\x89PNG\r\n\x00\xff--not-the-boundary\r\n");
        body.extend_from_slice(
            format!(
                "\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"tag\"\r\n\r\nsea\r\n\
                 --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"tag\"\r\n\r\nsun\r\n\
                 --{BOUNDARY}--\r\n"
            )
            .as_bytes(),
        );
        body
    }

    fn message(result: Result<Multipart, Error>) -> (u16, String) {
        let err = result.unwrap_err();
        (err.status(), err.message().to_owned())
    }

    #[test]
    fn reads_text_and_file_parts() {
        let form = form_data(good_body()).multipart().unwrap();
        let names: Vec<&str> = form.parts().iter().map(Part::name).collect();
        assert_eq!(names, ["title", "photo", "tag", "tag"]);

        assert_eq!(form.text("title").unwrap(), "Holiday ✓");
        let title = form.get("title").unwrap();
        assert!(!title.is_file());
        assert_eq!((title.file_name(), title.content_type()), (None, None));

        let photo = form.file("photo").unwrap();
        assert_eq!(photo.file_name(), Some("beach.png"));
        assert_eq!(photo.content_type(), Some("image/png"));
        assert_eq!(photo.header("x-extra"), Some("yes"));
        assert_eq!(photo.bytes(), b"\x89PNG\r\n\x00\xff--not-the-boundary\r\n");

        let tags: Vec<&str> = form.get_all("tag").map(|p| p.text().unwrap()).collect();
        assert_eq!(tags, ["sea", "sun"]);
        assert_eq!(form.into_parts().len(), 4);
    }

    #[test]
    fn an_empty_form_has_no_parts() {
        let form = form_data(format!("--{BOUNDARY}--\r\n"))
            .multipart()
            .unwrap();
        assert!(form.parts().is_empty());
    }

    #[test]
    fn the_text_fields_deserialise_into_a_struct() {
        #[derive(Debug, Deserialize)]
        struct Upload {
            title: String,
            draft: Option<bool>,
        }
        let upload: Upload = form_data(good_body()).multipart().unwrap().form().unwrap();
        assert_eq!(upload.title, "Holiday ✓");
        assert_eq!(upload.draft, None);

        #[derive(Debug, Deserialize)]
        struct Strict {
            #[allow(dead_code)]
            title: u32,
        }
        let err = form_data(good_body())
            .multipart()
            .unwrap()
            .form::<Strict>()
            .unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(
            err.message().starts_with("multipart field `title`: "),
            "{err}"
        );
    }

    #[test]
    fn missing_fields_and_wrong_kinds_name_the_field() {
        let form = form_data(good_body()).multipart().unwrap();
        let err = form.text("nope").unwrap_err();
        assert_eq!(
            (err.status(), err.message()),
            (400, "multipart field `nope` is missing")
        );
        let err = form.file("title").unwrap_err();
        assert_eq!(
            (err.status(), err.message()),
            (
                400,
                "multipart field `title` is not a file (its part has no `filename`)"
            )
        );
        let err = form.file("avatar").unwrap_err();
        assert_eq!(err.message(), "multipart file `avatar` is missing");
    }

    #[test]
    fn a_field_that_is_not_utf8_is_a_400_naming_it() {
        let mut body =
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\n")
                .into_bytes();
        body.extend_from_slice(b"\xff\xfe\r\n");
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        let form = form_data(body).multipart().unwrap();
        let err = form.text("note").unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(
            err.message()
                .starts_with("multipart field `note` is not valid UTF-8"),
            "{err}"
        );
    }

    #[test]
    fn another_content_type_is_a_415() {
        assert_eq!(
            message(request("application/x-www-form-urlencoded", "a=1").multipart()),
            (
                415,
                "expected a `multipart/form-data` body, not `application/x-www-form-urlencoded`"
                    .to_owned()
            )
        );
        let no_header = Request::builder("POST", "/").body("x").build();
        assert_eq!(message(no_header.multipart()).0, 415);
        assert_eq!(
            message(request("multipart/mixed; boundary=x", "").multipart()).0,
            415
        );
    }

    #[test]
    fn a_missing_or_invalid_boundary_is_a_400() {
        assert_eq!(
            message(request("multipart/form-data", good_body()).multipart()),
            (
                400,
                "the content type `multipart/form-data` has no `boundary` parameter".to_owned()
            )
        );
        let (status, text) =
            message(request("multipart/form-data; boundary=\"\"", good_body()).multipart());
        assert_eq!(status, 400);
        assert!(text.contains("boundary"), "{text}");
        let long = "x".repeat(71);
        let (status, text) =
            message(request(&format!("multipart/form-data; boundary={long}"), "").multipart());
        assert_eq!(status, 400);
        assert!(text.contains("1 to 70"), "{text}");
        let (status, text) = message(request("multipart/form-data; =;", "").multipart());
        assert_eq!(status, 400);
        assert!(text.starts_with("the content type "), "{text}");
    }

    #[test]
    fn a_malformed_body_is_a_400_naming_the_problem() {
        // Cut inside a field: the field is named.
        let body = good_body();
        let inside_photo = body.windows(4).position(|w| w == b"\x89PNG").unwrap() + 2;
        let cut = &body[..inside_photo];
        let (status, text) = message(form_data(cut).multipart());
        assert_eq!(status, 400);
        assert!(text.contains("`photo`"), "{text}");

        // No closing boundary.
        let (status, text) = message(
            form_data(format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n"
            ))
            .multipart(),
        );
        assert_eq!(status, 400);
        assert!(
            text.contains("cut short") || text.contains("closing boundary"),
            "{text}"
        );

        // Another boundary than the header says, and an empty body.
        let (status, text) = message(form_data("--other\r\n\r\nx\r\n--other--\r\n").multipart());
        assert_eq!(status, 400);
        assert!(text.contains(BOUNDARY), "{text}");
        assert_eq!(message(form_data("").multipart()).0, 400);

        // Headers that never end, and a header line that is not one.
        let (status, text) = message(
            form_data(format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"a\"\r\nX-A"
            ))
            .multipart(),
        );
        assert_eq!(status, 400);
        assert!(text.contains("cut short"), "{text}");
        let (status, text) = message(
            form_data(format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"a\"\r\nbroken header\r\n\r\nx\r\n--{BOUNDARY}--\r\n"
            ))
            .multipart(),
        );
        assert_eq!(status, 400);
        assert!(text.contains("headers"), "{text}");

        // A part without a name.
        let (status, text) = message(
            form_data(format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data\r\n\r\nx\r\n--{BOUNDARY}--\r\n"
            ))
            .multipart(),
        );
        assert_eq!(
            (status, text.as_str()),
            (
                400,
                "multipart part 1 has no `name` in its `content-disposition` header"
            )
        );
    }
}
