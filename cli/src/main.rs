//! The `nitro` binary: everything happens in the library; this maps its outcome to an exit
//! code.

use std::process::ExitCode;

fn main() -> ExitCode {
    match nitro_cli::run() {
        Ok(code) => code,
        Err(error) => {
            eprint!("{}", nitro_cli::report(&error));
            ExitCode::FAILURE
        }
    }
}
