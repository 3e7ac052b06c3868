//! rustc's coloured diagnostics as HTML, for the browser's error overlay.
//!
//! rustc renders with SGR sequences only: reset, bold, and the 16 colours (`\x1b[1m\x1b[91m`).
//! Each run of text becomes escaped text, in a `<span style=…>` when it has a style. Other
//! escape sequences (cursor movement, OSC hyperlinks) are dropped. Pure.

/// A piece of terminal text: a character, or the parameters of an SGR sequence (`1;91` of
/// `\x1b[1;91m`). Other escape sequences (cursor movement, OSC hyperlinks) yield nothing.
enum Token {
    Char(char),
    Sgr(String),
}

/// Splits terminal text into characters and SGR sequences.
fn tokens(text: &str) -> impl Iterator<Item = Token> + '_ {
    let mut chars = text.chars().peekable();
    std::iter::from_fn(move || {
        loop {
            let c = chars.next()?;
            if c != '\x1b' {
                return Some(Token::Char(c));
            }
            match chars.next() {
                Some('[') => {
                    // Parameters and intermediates, then one final byte in @..=~.
                    let mut params = String::new();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            if c == 'm' {
                                return Some(Token::Sgr(params));
                            }
                            break;
                        }
                        params.push(c);
                    }
                }
                Some(']') => {
                    // OSC: until BEL or ST (ESC \).
                    while let Some(c) = chars.next() {
                        if c == '\x07' {
                            break;
                        }
                        if c == '\x1b' && chars.peek() == Some(&'\\') {
                            chars.next();
                            break;
                        }
                    }
                }
                _ => {}
            }
        }
    })
}

/// The text without any escape sequence.
pub(crate) fn strip(text: &str) -> String {
    tokens(text)
        .filter_map(|t| match t {
            Token::Char(c) => Some(c),
            Token::Sgr(_) => None,
        })
        .collect()
}

/// Converts text with ANSI SGR colours to HTML for a `<pre>`.
pub(crate) fn to_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    let mut style = Style::default();
    let mut open = false;
    for token in tokens(text) {
        let c = match token {
            Token::Sgr(params) => {
                style.apply(&params);
                continue;
            }
            Token::Char(c) => c,
        };
        let css = style.css();
        if open && css.as_deref() != style.shown.as_deref() {
            out.push_str("</span>");
            open = false;
        }
        if !open && let Some(css) = &css {
            out.push_str("<span style=\"");
            out.push_str(css);
            out.push_str("\">");
            open = true;
        }
        style.shown = if open { css } else { None };
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    if open {
        out.push_str("</span>");
    }
    out
}

#[derive(Debug, Default)]
struct Style {
    bold: bool,
    italic: bool,
    underline: bool,
    fg: Option<u8>,
    /// The CSS of the span currently open.
    shown: Option<String>,
}

impl Style {
    fn apply(&mut self, params: &str) {
        let codes: Vec<u16> = params
            .split(';')
            .map(|p| {
                if p.is_empty() {
                    0
                } else {
                    p.parse().unwrap_or(u16::MAX)
                }
            })
            .collect();
        let mut i = 0;
        while i < codes.len() {
            match codes[i] {
                0 => {
                    self.bold = false;
                    self.italic = false;
                    self.underline = false;
                    self.fg = None;
                }
                1 => self.bold = true,
                3 => self.italic = true,
                4 => self.underline = true,
                22 => self.bold = false,
                23 => self.italic = false,
                24 => self.underline = false,
                n @ 30..=37 => self.fg = Some((n - 30) as u8),
                n @ 90..=97 => self.fg = Some((n - 90 + 8) as u8),
                39 => self.fg = None,
                // 256 colours and RGB: skip their arguments, keep the default colour.
                38 | 48 => {
                    i += match codes.get(i + 1) {
                        Some(5) => 2,
                        Some(2) => 4,
                        _ => 0,
                    };
                }
                _ => {}
            }
            i += 1;
        }
    }

    fn css(&self) -> Option<String> {
        let mut css = String::new();
        if let Some(fg) = self.fg {
            css.push_str("color:");
            css.push_str(PALETTE[usize::from(fg)]);
            css.push(';');
        }
        if self.bold {
            css.push_str("font-weight:bold;");
        }
        if self.italic {
            css.push_str("font-style:italic;");
        }
        if self.underline {
            css.push_str("text-decoration:underline;");
        }
        (!css.is_empty()).then_some(css)
    }
}

/// The 16 colours, readable on the overlay's dark background.
const PALETTE: [&str; 16] = [
    "#5c6370", "#e06c75", "#98c379", "#e5c07b", "#61afef", "#c678dd", "#56b6c2", "#dcdfe4",
    "#7f848e", "#ff7b85", "#b5e890", "#ffd580", "#7cc4ff", "#e09cff", "#7fe0ea", "#ffffff",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustc_colours_become_spans() {
        let rendered = "\x1b[1m\x1b[91merror[E0308]\x1b[0m\x1b[1m: mismatched types\x1b[0m\n \x1b[1m\x1b[94m--> \x1b[0mroutes/_ws.rs:4:18\n";
        assert_eq!(
            to_html(rendered),
            "<span style=\"color:#ff7b85;font-weight:bold;\">error[E0308]</span>\
             <span style=\"font-weight:bold;\">: mismatched types</span>\n \
             <span style=\"color:#7cc4ff;font-weight:bold;\">--&gt; </span>routes/_ws.rs:4:18\n"
        );
    }

    #[test]
    fn text_is_escaped_and_other_escapes_dropped() {
        assert_eq!(
            to_html("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(
            to_html("a\x1b]8;;https://x\x1b\\link\x1b]8;;\x07b\x1b[2Kc"),
            "alinkbc"
        );
        assert_eq!(to_html("\x1b[38;5;196mred\x1b[39m plain"), "red plain");
        assert_eq!(
            to_html("\x1b[4mu\x1b[24m"),
            "<span style=\"text-decoration:underline;\">u</span>"
        );
        assert_eq!(to_html("plain ✔"), "plain ✔");
        assert_eq!(to_html("\x1b[1m"), "");
    }
}
