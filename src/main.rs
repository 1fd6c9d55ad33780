//! The `dvkg` binary: parse the command line, set up logging, run, and turn
//! any failure into a report on stderr and a documented exit code (see
//! `dvkg::error`).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    if dvkg::cli::FAULT_INJECTION {
        eprintln!("{}", dvkg::cli::FAULT_BUILD_WARNING);
    }
    let cli = match dvkg::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints help and version to stdout with exit 0, and usage
            // errors to stderr with exit 2.
            let _ = err.print();
            return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2));
        }
    };
    dvkg::cli::init_tracing(&cli);
    match dvkg::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprint!("{}", err.render());
            err.exit_code()
        }
    }
}
