//! The human log's field formatter: `tracing-subscriber`'s [`DefaultFields`], with a fast path
//! for the fields of the server's request span.
//!
//! The `fmt` layer formats a span's fields when the span opens and again on each `record`,
//! whether or not an event is ever logged inside it. Every HTTP request opens a request span
//! (see `nitro_runtime::telemetry::span`), so that formatting is on the hot path: the default
//! visitor paints each name through `nu_ansi_term` and `write!`s three arguments per field.
//! For the request span's known fields this writes the same text with plain string writes;
//! every other span and every event goes to [`DefaultFields`] unchanged.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::{DefaultFields, Writer};

/// The request span's fields (`nitro_runtime::telemetry::span::request`).
const REQUEST_FIELDS: [&str; 7] = [
    "http.request.method",
    "url.path",
    "http.route",
    "nitro.route",
    "http.response.status_code",
    "trace_id",
    "parent_id",
];

/// Formats fields as [`DefaultFields`] does, faster for the request span's.
#[derive(Debug, Default)]
pub(crate) struct HumanFields {
    default: DefaultFields,
}

impl<'writer> FormatFields<'writer> for HumanFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut probe = OnlyRequestFields(true);
        fields.record(&mut probe);
        if !probe.0 {
            return self.default.format_fields(writer, fields);
        }
        let mut fast = Fast {
            ansi: writer.has_ansi_escapes(),
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut fast);
        fast.result
    }
}

/// Whether every field is one of [`REQUEST_FIELDS`].
struct OnlyRequestFields(bool);

impl Visit for OnlyRequestFields {
    fn record_debug(&mut self, field: &Field, _: &dyn fmt::Debug) {
        self.0 &= REQUEST_FIELDS.contains(&field.name());
    }
}

/// Writes `name=value` pairs as the default visitor does: names italic and `=` dimmed under
/// ANSI, values in their `Debug` form (strings quoted), separated by spaces. The method is
/// written bare, as the `Display` value it used to be recorded as.
struct Fast<'writer> {
    writer: Writer<'writer>,
    ansi: bool,
    first: bool,
    result: fmt::Result,
}

impl Fast<'_> {
    fn name(&mut self, name: &str) -> fmt::Result {
        if !std::mem::take(&mut self.first) {
            self.writer.write_char(' ')?;
        }
        if self.ansi {
            self.writer.write_str("\x1b[3m")?;
            self.writer.write_str(name)?;
            self.writer.write_str("\x1b[0m\x1b[2m=\x1b[0m")
        } else {
            self.writer.write_str(name)?;
            self.writer.write_char('=')
        }
    }
}

impl Visit for Fast<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.result.is_ok() {
            self.result = self.name(field.name()).and_then(|()| {
                if field.name() == "http.request.method" {
                    self.writer.write_str(value)
                } else {
                    write!(self.writer, "{value:?}")
                }
            });
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.result.is_ok() {
            self.result = self
                .name(field.name())
                .and_then(|()| write!(self.writer, "{value}"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_ok() {
            self.result = self
                .name(field.name())
                .and_then(|()| write!(self.writer, "{value:?}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing::field::Empty;
    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    /// Logs an event inside a request span (and one in another span) with `fields` or the
    /// default formatter, as the server would.
    fn log(fast: bool, ansi: bool) -> String {
        let out = Captured::default();
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(out.clone())
            .with_ansi(ansi)
            .without_time();
        let subscriber = tracing_subscriber::registry();
        let dispatch = if fast {
            tracing::Dispatch::new(subscriber.with(layer.fmt_fields(HumanFields::default())))
        } else {
            tracing::Dispatch::new(subscriber.with(layer))
        };
        tracing::dispatcher::with_default(&dispatch, || {
            let method = "PATCH";
            let span = tracing::info_span!(
                target: "nitro::request",
                "request",
                http.request.method = method,
                url.path = "/a \"b\"",
                http.route = Empty,
                nitro.route = Empty,
                http.response.status_code = Empty,
                trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
                parent_id = Empty,
            );
            let _entered = span.enter();
            span.record("http.route", "/a/:b");
            span.record("nitro.route", "routes/a/[b].rs");
            span.record("http.response.status_code", 204_u16);
            tracing::info!(user = 7, "inside \"it\"");
            let other = tracing::info_span!("peer", nitro.peer.id = "p1", n = 3);
            let _inner = other.enter();
            tracing::warn!(error = %"boom", "deeper");
        });
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn the_fast_path_writes_what_the_default_writes() {
        for ansi in [false, true] {
            let default = log(false, ansi).replace(
                "http.request.method\x1b[0m\x1b[2m=\x1b[0m\"PATCH\"",
                "http.request.method\x1b[0m\x1b[2m=\x1b[0mPATCH",
            );
            let default =
                default.replace("http.request.method=\"PATCH\"", "http.request.method=PATCH");
            assert_eq!(log(true, ansi), default, "ansi: {ansi}");
        }
        let plain = log(true, false);
        assert!(
            plain.contains(
                "request{http.request.method=PATCH url.path=\"/a \\\"b\\\"\" trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\" http.route=\"/a/:b\" nitro.route=\"routes/a/[b].rs\" http.response.status_code=204}: "
            ),
            "{plain}"
        );
    }
}
