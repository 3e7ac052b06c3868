//! The tracing subscriber: installed once, by the binary, writing to stderr.
//!
//! `-q`/`-v` pick the default filter; `RUST_LOG`, when set, wins over both. stdout is kept for
//! data (the server's URL), so logs never mix with what a script might read.

use tracing_subscriber::EnvFilter;

/// The filter for a verbosity: `-q` → warnings and errors, default → info, `-v` → debug for
/// nitro's crates, `-vv` → debug everywhere, `-vvv` → trace.
pub(crate) fn default_directives(verbose: u8, quiet: bool) -> &'static str {
    if quiet {
        return "warn";
    }
    match verbose {
        0 => "info",
        1 => "info,nitro_cli=debug,nitro_runtime=debug,nitro_router=debug,nitro=debug",
        2 => "debug",
        _ => "trace",
    }
}

/// Installs the subscriber. Call once, from the binary; later calls are ignored (a test may
/// have installed one).
pub(crate) fn init(verbose: u8, quiet: bool) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => EnvFilter::try_new(&value).unwrap_or_else(|e| {
            eprintln!("warning: ignoring `RUST_LOG={value}`: {e}");
            EnvFilter::new(default_directives(verbose, quiet))
        }),
        _ => EnvFilter::new(default_directives(verbose, quiet)),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(verbose > 0)
        // Colours only on a terminal: `nitro start`'s request log often goes to a file.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        )
        .without_time()
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbosity_maps_to_a_valid_filter() {
        assert_eq!(default_directives(3, true), "warn");
        assert_eq!(default_directives(0, false), "info");
        for v in 0..5 {
            EnvFilter::try_new(default_directives(v, false)).unwrap();
        }
    }
}
