//! The command line: no subcommand runs the Lambda loop (as Lambda starts it); `invoke` and
//! `check` run the same init and invoke code locally, without HTTP; `serve` offers Lambda's
//! Invoke API on localhost (its options live with it, in `serve`).

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// A Lambda custom runtime that runs any interpreter.
///
/// With no subcommand, bootstrap serves the Lambda Runtime API named by
/// AWS_LAMBDA_RUNTIME_API, running the handler named by _HANDLER for each event.
#[derive(Debug, Parser)]
#[command(name = "bootstrap", version, about, long_about)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one event through the handler, exactly as the Lambda loop would, and print the
    /// response; on a handler error print the error JSON and exit 1.
    Invoke {
        #[command(flatten)]
        target: Target,
        /// Seconds before the handler is killed, as the function timeout would.
        #[arg(long, default_value = "3", value_name = "SECONDS", value_parser = positive_seconds)]
        timeout: f64,
        /// The event: a file, or - for stdin. Without it the event is {}.
        #[arg(value_name = "EVENT_FILE")]
        event: Option<PathBuf>,
    },
    /// Run the init checks and print the resolved file, interpreter and argv; exit 1 with the
    /// init error otherwise.
    ///
    /// With --opt, check an unzipped function (--task-root) and layer (--opt) before deploying:
    /// run bits, CRLF line endings, interpreters missing from Lambda's PATH, missing files.
    Check {
        #[command(flatten)]
        target: Target,
        /// An unzipped layer directory, standing in for Lambda's /opt.
        #[arg(long, value_name = "DIR")]
        opt: Option<PathBuf>,
    },
    /// Serve Lambda's Invoke API on localhost (for the AWS CLI, SDKs with --endpoint-url,
    /// curl), running the handler through the same Lambda loop as on Lambda.
    Serve(ServeArgs),
}

/// A timeout in seconds: a finite number above zero.
pub fn positive_seconds(text: &str) -> Result<f64, String> {
    let seconds: f64 = text.trim().parse().map_err(|_| format!("{text:?} is not a number"))?;
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= 1e9) {
        return Err(format!(
            "{text} is not a timeout\nhint: give the seconds a handler may run, more than 0 (e.g. 3, or 0.5)"
        ));
    }
    Ok(seconds)
}

/// Which handler to run, defaulting to what Lambda would set.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// The handler, <file>.<method> [default: $_HANDLER]
    #[arg(long, value_name = "HANDLER")]
    pub handler: Option<String>,
    /// The directory holding the function code [default: $LAMBDA_TASK_ROOT, else .]
    #[arg(long, value_name = "DIR")]
    pub task_root: Option<PathBuf>,
}

/// The command line of `bootstrap serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub target: Target,
    /// The address to listen on; anything but loopback exposes the function unauthenticated.
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDRESS")]
    pub host: IpAddr,
    /// The port to listen on; 0 picks a free one (the address is printed either way).
    #[arg(long, default_value_t = 9000, value_name = "PORT")]
    pub port: u16,
    /// Seconds an invocation may run before its handler is stopped (the function timeout).
    #[arg(
        long,
        env = "AWS_LAMBDA_FUNCTION_TIMEOUT",
        default_value = "300",
        value_name = "SECONDS",
        value_parser = positive_seconds
    )]
    pub timeout: f64,
    /// Invocations run at once, each by its own Lambda loop; more wait their turn.
    #[arg(
        long,
        env = "AWS_LAMBDA_MAX_CONCURRENCY",
        default_value_t = 1,
        value_name = "N",
        value_parser = clap::value_parser!(u16).range(1..=1024)
    )]
    pub concurrency: u16,
    /// The memory size the REPORT lines state, in MB (not enforced).
    #[arg(
        long,
        env = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        default_value_t = 128,
        value_name = "MB",
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub memory_size: u32,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        super::Args::command().debug_assert();
    }

    #[test]
    fn timeouts_are_positive_seconds() {
        assert_eq!(super::positive_seconds("0.5"), Ok(0.5));
        for bad in ["0", "-1", "nan", "inf", "soon", ""] {
            assert!(super::positive_seconds(bad).is_err(), "{bad:?}");
        }
    }
}
