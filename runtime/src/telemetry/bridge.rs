//! Route events on the host's subscriber: the host end of `HostApi::event`.
//!
//! A route's `tracing` event arrives as its level, target and fields (names and values as
//! text, with a kind each). The host's subscriber only takes events whose metadata is
//! `'static` and registered, so each distinct shape (level, target, field names) gets one
//! callsite, made once and kept for the life of the process (route code has a fixed set of
//! callsites, so the set stays small; a reload with the same events reuses them). The event is
//! then dispatched on the calling thread, whose current span is the request's or the peer's:
//! the host enters it around every call and poll of the route.

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

use nitro_abi as abi;
use tracing::Level;
use tracing::level_filters::LevelFilter;
use tracing_core::callsite::{Callsite, Identifier};
use tracing_core::field::{Field, FieldSet, Value};
use tracing_core::metadata::Kind;
use tracing_core::subscriber::Interest;
use tracing_core::{Event, Metadata};

/// The field every bridged event carries: the route file, as `nitro::log` does.
pub const ROUTE_FIELD: &str = "route";

/// At most this many fields of one event are kept (the rest are dropped): `tracing`'s value
/// sets are fixed-size arrays.
const MAX_FIELDS: usize = 32;

/// One field of a route's event, borrowed from the call.
#[derive(Debug, Clone, Copy)]
pub struct RouteField<'a> {
    pub name: &'a str,
    pub value: &'a str,
    /// One of `abi::field_kind`.
    pub kind: u8,
}

/// The most verbose level the host's subscriber records, as `abi::level` (0: nothing).
pub fn max_level() -> u32 {
    match LevelFilter::current().into_level() {
        None => 0,
        Some(Level::ERROR) => abi::level::ERROR.into(),
        Some(Level::WARN) => abi::level::WARN.into(),
        Some(Level::INFO) => abi::level::INFO.into(),
        Some(Level::DEBUG) => abi::level::DEBUG.into(),
        Some(Level::TRACE) => abi::level::TRACE.into(),
    }
}

fn level(level: u8) -> Level {
    match level {
        abi::level::ERROR => Level::ERROR,
        abi::level::WARN => Level::WARN,
        abi::level::INFO => Level::INFO,
        abi::level::DEBUG => Level::DEBUG,
        _ => Level::TRACE,
    }
}

/// A callsite made at run time for one event shape.
struct RouteCallsite {
    meta: OnceLock<Metadata<'static>>,
}

impl Callsite for RouteCallsite {
    fn set_interest(&self, _interest: Interest) {}

    fn metadata(&self) -> &Metadata<'_> {
        self.meta
            .get()
            .expect("set before the callsite is registered")
    }
}

type Shapes = RwLock<HashMap<String, &'static RouteCallsite>>;

fn shapes() -> &'static Shapes {
    static SHAPES: OnceLock<Shapes> = OnceLock::new();
    SHAPES.get_or_init(Default::default)
}

/// The callsite for events of this level, target and field names (then [`ROUTE_FIELD`]).
fn callsite(level: Level, target: &str, names: &[&str]) -> &'static RouteCallsite {
    let mut key = String::with_capacity(target.len() + 64);
    key.push_str(level.as_str());
    key.push(' ');
    key.push_str(target);
    for name in names {
        key.push(' ');
        key.push_str(name);
    }
    if let Some(found) = shapes().read().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return found;
    }
    let mut map = shapes().write().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = map.get(&key) {
        return found;
    }
    let leak = |s: &str| -> &'static str { Box::leak(s.to_owned().into_boxed_str()) };
    let mut all: Vec<&'static str> = Vec::with_capacity(names.len() + 1);
    all.extend(names.iter().map(|n| leak(n)));
    all.push(ROUTE_FIELD);
    let all: &'static [&'static str] = Box::leak(all.into_boxed_slice());
    let site: &'static RouteCallsite = Box::leak(Box::new(RouteCallsite {
        meta: OnceLock::new(),
    }));
    let meta = Metadata::new(
        "route event",
        leak(target),
        level,
        None,
        None,
        None,
        FieldSet::new(all, Identifier(site)),
        Kind::EVENT,
    );
    let _ = site.meta.set(meta);
    tracing_core::callsite::register(site);
    map.insert(key, site);
    site
}

/// A field and its value, as `tracing`'s value sets hold them.
type Pair<'v> = (&'v Field, Option<&'v (dyn Value + 'v)>);

/// A field's value with its type back.
enum Typed<'a> {
    Str(&'a str),
    Display(tracing::field::DisplayValue<&'a str>),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

impl<'a> Typed<'a> {
    fn parse(field: &RouteField<'a>) -> Typed<'a> {
        let text = field.value;
        let parsed = match field.kind {
            abi::field_kind::I64 => text.parse().ok().map(Typed::I64),
            abi::field_kind::U64 => text.parse().ok().map(Typed::U64),
            abi::field_kind::F64 => text.parse().ok().map(Typed::F64),
            abi::field_kind::BOOL => text.parse().ok().map(Typed::Bool),
            abi::field_kind::STR => Some(Typed::Str(text)),
            _ => None,
        };
        parsed.unwrap_or(Typed::Display(tracing::field::display(text)))
    }

    fn value(&self) -> &(dyn Value + '_) {
        match self {
            Typed::Str(v) => v,
            Typed::Display(v) => v,
            Typed::I64(v) => v,
            Typed::U64(v) => v,
            Typed::F64(v) => v,
            Typed::Bool(v) => v,
        }
    }
}

/// Records a route's event on the host's subscriber, in the current span, with `route = file`.
/// Fields named like [`ROUTE_FIELD`] are dropped, as are fields past the 31st.
pub fn route_event(file: &str, level_code: u8, target: &str, fields: &[RouteField<'_>]) {
    let fields: Vec<&RouteField<'_>> = fields
        .iter()
        .filter(|f| f.name != ROUTE_FIELD)
        .take(MAX_FIELDS - 1)
        .collect();
    let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
    let site = callsite(level(level_code), target, &names);
    let meta = site.metadata();
    let typed: Vec<Typed<'_>> = fields.iter().map(|f| Typed::parse(f)).collect();
    let set = meta.fields();
    // The route's fields in order, then [`ROUTE_FIELD`].
    let fields: Vec<Field> = set.iter().collect();
    let mut values: Vec<&(dyn Value + '_)> = typed.iter().map(Typed::value).collect();
    values.push(&file);
    let refs: Vec<_> = fields
        .iter()
        .zip(values.iter())
        .map(|(field, value)| (field, Some(*value)))
        .collect();
    // `tracing`'s value sets are fixed-size arrays: one arm per length.
    macro_rules! by_len {
        ($($n:literal)*) => {
            match refs.len() {
                $($n => {
                    // Element lifetimes shrink to the array's borrow, which `value_set` needs.
                    // (`ok()`: the error's `Debug` would want `'static` values.)
                    let Some(array): Option<[Pair<'_>; $n]> = refs.try_into().ok() else {
                        return;
                    };
                    let values = set.value_set(&array);
                    if !tracing::dispatcher::get_default(|dispatch| dispatch.enabled(meta)) {
                        return;
                    }
                    // In the request's span, opened now if this is its first event (outside
                    // `get_default`: a span made inside its callback would be a disabled one
                    // under a scoped dispatcher).
                    super::span::enter_request_span();
                    tracing::dispatcher::get_default(|dispatch| {
                        dispatch.event(&Event::new(meta, &values));
                    });
                })*
                _ => {}
            }
        };
    }
    by_len!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;

    /// Captures the formatted output of a `fmt` subscriber.
    #[derive(Clone, Default)]
    struct Out(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Out {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn capture(f: impl FnOnce()) -> String {
        let out = Out::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .without_time(),
        );
        tracing::subscriber::with_default(subscriber, f);
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    fn field<'a>(name: &'a str, value: &'a str, kind: u8) -> RouteField<'a> {
        RouteField { name, value, kind }
    }

    #[test]
    fn an_event_keeps_its_level_target_fields_and_span() {
        let text = capture(|| {
            let span = tracing::info_span!("request", url.path = "/x");
            let _in = span.enter();
            route_event(
                "routes/x.rs",
                abi::level::WARN,
                "route_x::route",
                &[
                    field("message", "order placed", abi::field_kind::DEBUG),
                    field("user", "42", abi::field_kind::U64),
                    field("name", "ann", abi::field_kind::STR),
                    field("route", "forged", abi::field_kind::STR),
                ],
            );
        });
        assert_eq!(
            text.trim(),
            "WARN request{url.path=\"/x\"}: route_x::route: order placed user=42 name=\"ann\" route=\"routes/x.rs\""
        );
    }

    #[test]
    fn a_route_event_opens_the_request_span_it_is_recorded_in() {
        let text = capture(|| {
            let request = http::Request::get("/users/7?tab=a").body(()).unwrap();
            let serving = super::super::span::start(
                request.method(),
                request.uri(),
                request.headers(),
                false,
            );
            let handle = async {
                super::super::span::record_route("/users/:id", "routes/users/[id].rs");
                route_event(
                    "routes/users/[id].rs",
                    abi::level::INFO,
                    "route_users",
                    &[field("message", "found", abi::field_kind::DEBUG)],
                );
                http::Response::new(())
            };
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(serving.serve(handle));
        });
        assert_eq!(
            text.trim(),
            "INFO request{http.request.method=\"GET\" url.path=\"/users/7\" http.route=\"/users/:id\" nitro.route=\"routes/users/[id].rs\"}: route_users: found route=\"routes/users/[id].rs\""
        );
    }

    #[test]
    fn the_same_shape_reuses_its_callsite() {
        let a = callsite(Level::INFO, "t", &["message", "a"]);
        let b = callsite(Level::INFO, "t", &["message", "a"]);
        let c = callsite(Level::INFO, "t", &["message", "b"]);
        assert!(std::ptr::eq(a, b));
        assert!(!std::ptr::eq(a, c));
    }

    #[test]
    fn a_disabled_level_is_not_recorded() {
        let out = Out::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(Level::INFO)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            route_event(
                "r",
                abi::level::DEBUG,
                "t2",
                &[field("message", "hidden", 1)],
            );
            route_event("r", abi::level::INFO, "t2", &[field("message", "shown", 1)]);
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(!text.contains("hidden"), "{text}");
        assert!(text.contains("shown"), "{text}");
    }
}
