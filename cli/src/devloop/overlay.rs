//! The browser's error overlay: rustc's rendered diagnostics as text, HTML and the
//! `file:line:col` of each error.

use nitro_runtime::devclient::Overlay;

use crate::devloop::ansi;

/// The overlay for rendered diagnostics (ANSI colours allowed).
pub(crate) fn overlay_of(rendered: &str) -> Overlay {
    let text = ansi::strip(rendered);
    Overlay {
        html: ansi::to_html(rendered),
        locations: error_locations(&text),
        text,
    }
}

/// The `file:line:col` of each error in plain rustc diagnostics (the `-->` line of every
/// `error` block; warnings are left out), in order, without repeats. Pure.
pub(crate) fn error_locations(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut in_error = false;
    for line in text.lines() {
        if line.starts_with("error") {
            in_error = true;
        } else if line.starts_with("warning") || line.starts_with("For more information") {
            in_error = false;
        } else if in_error && let Some(at) = line.trim_start().strip_prefix("--> ") {
            let at = at.trim().to_owned();
            if !out.contains(&at) {
                out.push(at);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_locations_come_from_error_blocks() {
        let text = "warning: unused variable: `x`\n --> routes/a.rs:1:5\n\nerror[E0308]: mismatched types\n --> routes/_ws.rs:16:21\n   |\n16 |     let oops: u32 = \"no\";\n\nerror: cannot find value `y`\n  --> routes/users/[id].rs:3:9\n\nFor more information about this error, try `rustc --explain E0308`.\n";
        assert_eq!(
            error_locations(text),
            ["routes/_ws.rs:16:21", "routes/users/[id].rs:3:9"]
        );
        assert!(error_locations("error: cargo did not build this route\n").is_empty());
        let overlay = overlay_of(
            "\x1b[1m\x1b[91merror\x1b[0m: x\n \x1b[1m\x1b[94m--> \x1b[0mroutes/a.rs:2:3\n",
        );
        assert_eq!(overlay.text, "error: x\n --> routes/a.rs:2:3\n");
        assert_eq!(overlay.locations, ["routes/a.rs:2:3"]);
        assert!(overlay.html.contains("<span"));
    }
}
