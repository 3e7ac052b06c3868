//! What `nitro` tells the person at the terminal (as opposed to logs, see `logging`).
//!
//! Status goes to stderr; stdout carries only data (the server URL), so `nitro dev | head -1`
//! reads the URL. Colours are used when stderr is a terminal and `NO_COLOR` is unset.

use std::io::IsTerminal;

use crate::project::cargo_build::Diagnostics;

/// `1 route`, `2 routes`, `3 libraries`.
pub fn plural(n: usize, word: &str) -> String {
    match (n, word) {
        (1, _) => format!("1 {word}"),
        (_, "library") => format!("{n} libraries"),
        _ => format!("{n} {word}s"),
    }
}

/// The terminal, as the commands see it.
#[derive(Debug, Clone)]
pub struct Ui {
    quiet: bool,
    color: bool,
    /// `--log-format json`: status, warnings, errors and diagnostics go out as log events
    /// (target `nitro::cli`), so every line on stderr is one JSON object.
    json: bool,
}

impl Ui {
    pub fn new(quiet: bool) -> Ui {
        let color = std::io::stderr().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Ui {
            quiet,
            color,
            json: false,
        }
    }

    /// The same terminal, with status and errors as log events when `json`.
    pub fn with_json_logs(self, json: bool) -> Ui {
        Ui {
            json,
            color: self.color && !json,
            ..self
        }
    }

    /// A `Ui` that never colours (tests, pipes).
    pub fn plain(quiet: bool) -> Ui {
        Ui {
            quiet,
            color: false,
            json: false,
        }
    }

    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    pub fn color(&self) -> bool {
        self.color
    }

    /// Status on stderr, unless `-q`.
    pub fn status(&self, text: &str) {
        if self.quiet {
            return;
        }
        if self.json {
            let text = text.trim();
            if !text.is_empty() {
                tracing::info!(target: "nitro::cli", "{text}");
            }
            return;
        }
        eprintln!("{text}");
    }

    /// `warning: …` on stderr, even with `-q`.
    pub fn warn(&self, text: &str) {
        if self.json {
            tracing::warn!(target: "nitro::cli", "{text}");
            return;
        }
        eprintln!("{}: {text}", self.paint("warning", "1;33"));
    }

    /// `error: …` on stderr, for errors that do not end the command.
    pub fn error(&self, text: &str) {
        if self.json {
            tracing::error!(target: "nitro::cli", "{text}");
            return;
        }
        eprintln!("{}: {text}", self.paint("error", "1;31"));
    }

    /// rustc's diagnostics, coloured as rendered or plain.
    pub fn diagnostics(&self, diagnostics: &Diagnostics) {
        if self.json {
            tracing::warn!(target: "nitro::cli", "{}", diagnostics.plain().trim_end());
        } else if self.color {
            eprint!("{}", diagnostics.rendered);
        } else {
            eprint!("{}", diagnostics.plain());
        }
    }

    /// Data on stdout (shown even with `-q`).
    pub fn data(&self, text: &str) {
        println!("{text}");
    }

    /// Wraps `text` in an SGR colour when colouring.
    pub fn paint(&self, text: &str, sgr: &str) -> String {
        if self.color {
            format!("\x1b[{sgr}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}
