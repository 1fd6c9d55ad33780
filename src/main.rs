//! The `dvkg` binary: parse the command line, set up logging, run, and turn
//! any failure into a report on stderr and a documented exit code (see
//! `dvkg::error`).

use std::process::ExitCode;

use clap::Parser;

/// Caps glibc's malloc at two arenas, unless `MALLOC_ARENA_MAX` says
/// otherwise. By default every thread that allocates may get an arena of
/// its own (up to 8 per core), and what one frees the others do not reuse;
/// a ceremony allocates on every rayon and tokio thread, so its peak memory
/// grew by a quarter that way (4 operators at V=10,000 with PBKDF2: 168 MiB
/// each with the default, 137 MiB with two arenas, the same wall time).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt sets an allocator parameter and has no other
        // effect; it runs first thing in main, before any other thread.
        #[allow(unsafe_code)]
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

fn main() -> ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    limit_malloc_arenas();
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
