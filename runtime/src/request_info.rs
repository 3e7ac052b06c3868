//! A request as route code receives it ([`RequestInfo`]), and its view through the ABI.

use bytes::Bytes;
use nitro_abi as abi;

/// An HTTP request (or WebSocket upgrade request) as handed to a route.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    /// Upper-case method.
    pub method: String,
    /// URL path as received (percent-encoded).
    pub path: String,
    /// Raw query string without `?`.
    pub query: String,
    /// Header names in lower case, in order; values lossily decoded as UTF-8.
    pub headers: Vec<(String, String)>,
    /// Route params, decoded.
    pub params: Vec<(String, String)>,
    /// The whole body.
    pub body: Bytes,
    /// `ip:port` of the client.
    pub remote_addr: String,
    /// Context set by middleware: key and JSON text.
    pub context: Vec<(String, String)>,
}

/// A [`RequestInfo`] as the ABI sees it: the pair arrays, and the `HttpRequest` pointing into
/// them and into the request's own strings.
///
/// The view borrows the request without a lifetime (it is stored beside the request in a
/// peer): whoever builds one keeps the request alive and unchanged for as long as the view
/// is used. Building and moving a view is safe; reading through it (in a route) is what
/// relies on that.
pub(crate) struct AbiRequest {
    _headers: Vec<abi::Pair>,
    _params: Vec<abi::Pair>,
    _context: Vec<abi::Pair>,
    req: abi::HttpRequest,
}

impl AbiRequest {
    /// The view of `info`; see the type's documentation for how long it may be used.
    pub(crate) fn new(info: &RequestInfo) -> AbiRequest {
        let pairs = |list: &[(String, String)]| -> Vec<abi::Pair> {
            list.iter()
                .map(|(n, v)| abi::Pair {
                    name: abi::Bytes::new(n.as_bytes()),
                    value: abi::Bytes::new(v.as_bytes()),
                })
                .collect()
        };
        let headers = pairs(&info.headers);
        let params = pairs(&info.params);
        let context = pairs(&info.context);
        let req = abi::HttpRequest {
            method: abi::Bytes::new(info.method.as_bytes()),
            path: abi::Bytes::new(info.path.as_bytes()),
            query: abi::Bytes::new(info.query.as_bytes()),
            headers: abi::Pairs::new(&headers),
            params: abi::Pairs::new(&params),
            body: abi::Bytes::new(&info.body),
            remote_addr: abi::Bytes::new(info.remote_addr.as_bytes()),
            context: abi::Pairs::new(&context),
        };
        AbiRequest {
            _headers: headers,
            _params: params,
            _context: context,
            req,
        }
    }

    /// The request to hand to a route.
    pub(crate) fn as_abi(&self) -> &abi::HttpRequest {
        &self.req
    }
}

impl std::fmt::Debug for AbiRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AbiRequest")
    }
}
