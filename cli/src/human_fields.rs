//! Field formatters for the `fmt` layers that leave the request span's fields alone.
//!
//! The `fmt` layer formats a span's fields when the span opens and again on each `record`,
//! whether or not an event is ever logged inside it. Every HTTP request opens a request span
//! (see `nitro_runtime::telemetry::span`), so that formatting was on the hot path of every
//! request, for lines that are almost never written. These formatters write nothing for the
//! request span's own fields; the request-log layer (`logging::RequestLog`), which keeps those
//! fields anyway, writes them into the span's formatted fields just before an event inside the
//! span is formatted. Every other span and every event is formatted as before
//! ([`DefaultFields`], [`JsonFields`]).

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::span;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::{DefaultFields, JsonFields, Writer};
use tracing_subscriber::fmt::{FormatFields, FormattedFields};

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

/// Whether `fields` are the request span's (when it opens: the method is among them) or
/// recorded on it later (a `Record` of request fields only). An event always has more (its
/// message), so no event is ever left out.
fn request_fields<R: RecordFields>(fields: &R, opening: bool) -> bool {
    struct Probe {
        only_request: bool,
        method: bool,
    }
    impl Visit for Probe {
        fn record_debug(&mut self, field: &Field, _: &dyn fmt::Debug) {
            self.only_request &= REQUEST_FIELDS.contains(&field.name());
            self.method |= field.name() == "http.request.method";
        }
    }
    let mut probe = Probe {
        only_request: true,
        method: false,
    };
    fields.record(&mut probe);
    probe.only_request && (probe.method || !opening)
}

/// `inner`'s formatting of `fields`, unless they are the request span's (nothing written).
fn unless_request<'writer, F, R>(inner: &F, writer: Writer<'writer>, fields: R) -> fmt::Result
where
    F: FormatFields<'writer>,
    R: RecordFields,
{
    if request_fields(&fields, true) {
        return Ok(());
    }
    inner.format_fields(writer, fields)
}

/// The human format's fields: [`DefaultFields`], except the request span's.
#[derive(Debug, Default)]
pub(crate) struct HumanFields(DefaultFields);

impl<'writer> FormatFields<'writer> for HumanFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        unless_request(&self.0, writer, fields)
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &span::Record<'_>,
    ) -> fmt::Result {
        if request_fields(fields, false) {
            return Ok(());
        }
        if !current.fields.is_empty() {
            current.fields.push(' ');
        }
        self.format_fields(current.as_writer(), fields)
    }
}

/// The JSON format's span fields: [`JsonFields`], except the request span's.
#[derive(Debug, Default)]
pub(crate) struct JsonSpanFields(JsonFields);

impl<'writer> FormatFields<'writer> for JsonSpanFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        unless_request(&self.0, writer, fields)
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &span::Record<'_>,
    ) -> fmt::Result {
        if request_fields(fields, false) {
            return Ok(());
        }
        // `JsonFields` merges into the object written so far.
        let mut inner = FormattedFields::<JsonFields>::new(std::mem::take(&mut current.fields));
        let result = self.0.add_fields(&mut inner, fields);
        current.fields = inner.fields;
        result
    }
}
