//! HTTP methods a route file can be restricted to.

use std::fmt;
use std::str::FromStr;

/// An HTTP method that a route file can name as a suffix (`users.get.rs`).
///
/// The order of the variants is the order of [`Match::MethodNotAllowed`]'s
/// `allow` list (and so of an `Allow` header): GET, POST, PUT, PATCH, DELETE,
/// HEAD, OPTIONS.
///
/// [`Match::MethodNotAllowed`]: crate::Match::MethodNotAllowed
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// `GET`, file suffix `.get`.
    Get,
    /// `POST`, file suffix `.post`.
    Post,
    /// `PUT`, file suffix `.put`.
    Put,
    /// `PATCH`, file suffix `.patch`.
    Patch,
    /// `DELETE`, file suffix `.delete`.
    Delete,
    /// `HEAD`, file suffix `.head`.
    Head,
    /// `OPTIONS`, file suffix `.options`.
    Options,
}

impl Method {
    /// Every method, in order.
    pub const ALL: [Method; 7] = [
        Method::Get,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
        Method::Head,
        Method::Options,
    ];

    /// The method as it appears on the wire: `"GET"`, `"POST"`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
        }
    }

    /// The file-name suffix without its dot: `"get"`, `"post"`, ...
    pub fn suffix(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Post => "post",
            Method::Put => "put",
            Method::Patch => "patch",
            Method::Delete => "delete",
            Method::Head => "head",
            Method::Options => "options",
        }
    }

    /// The method named by a lower-case file-name suffix (without its dot).
    pub(crate) fn from_suffix(suffix: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.suffix() == suffix)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of [`Method::from_str`]: the text is not one of the seven method
/// names, in upper case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown HTTP method `{0}`: use one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS")]
pub struct UnknownMethod(pub String);

impl FromStr for Method {
    type Err = UnknownMethod;

    /// Parses a method name as sent on the wire. HTTP methods are
    /// case-sensitive, so `"get"` is not `GET`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Method::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| UnknownMethod(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for m in Method::ALL {
            assert_eq!(m.as_str().parse::<Method>(), Ok(m));
            assert_eq!(m.to_string(), m.as_str());
            assert_eq!(Method::from_suffix(m.suffix()), Some(m));
        }
    }

    #[test]
    fn is_case_sensitive() {
        assert_eq!("get".parse::<Method>(), Err(UnknownMethod("get".into())));
        assert_eq!(
            "TRACE".parse::<Method>(),
            Err(UnknownMethod("TRACE".into()))
        );
        assert_eq!(Method::from_suffix("GET"), None);
        assert_eq!(Method::from_suffix("trace"), None);
    }

    #[test]
    fn all_is_sorted() {
        let mut sorted = Method::ALL;
        sorted.sort();
        assert_eq!(sorted, Method::ALL);
    }
}
