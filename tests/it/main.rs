//! Integration tests: the real `bootstrap` binary against a Runtime API on loopback.

mod support;

// The Lambda loop: endpoints, address forms, keep-alive, 204 and 500 handling.
mod runtime_loop;
// Perl, Python, shell, Node and executables, each through the real loop.
mod languages;
// Per-event failures: exit codes, signals, deadlines, oversized output, stdin deadlocks.
mod failures;
// Init errors: every way `_HANDLER`, the config or the interpreter can be wrong.
mod init_errors;
// interpreters.toml: layering, new languages by config alone, event as argument or file.
mod config;
// `bootstrap invoke`, `bootstrap check`, --help and --version.
mod local;
// Framed workers: started ahead, reused, replaced; the frame protocol enforced.
mod framed;
// AWS_LAMBDA_MAX_CONCURRENCY: that many loops, a private TMPDIR each.
mod concurrency;
// AWS_LAMBDA_LOG_FORMAT=JSON and AWS_LAMBDA_LOG_LEVEL; multi-line errors as one record.
mod logs;
// Streamed responses through bootstrap: chunks as written, error trailers, 50 MB, preludes.
mod streaming;
// Events and names built to run code: they never do.
mod hostile;
// 10,000 events through one bootstrap: no memory, descriptor or process leaks.
mod soak;
// SIGTERM and SIGINT: the handler group is stopped, the event answered, the process gone.
mod shutdown;
// The layer zips as Lambda unpacks them, on x86_64 and arm64, and with no libc at all.
mod static_layers;
// The deploy recipes under examples/.
mod examples;
// Runtime API faults: rejected posts, lost or closed connections, cut or slow answers, bad headers.
mod api_faults;
// StreamingResponse, the chunked /response client: chunks as they arrive, trailers, limits.
mod stream_client;
// _HANDLER read per language, as AWS's runtimes read it: which file, which method.
mod handler_names;
// AWS's Python programming model (awslambdaric's behaviours), in every mode.
mod aws_python;
// AWS's Node programming model (aws-lambda-nodejs-runtime-interface-client's), in every mode.
mod aws_node;
// AWS's Ruby programming model (aws_lambda_ric's), in every mode.
mod aws_ruby;
// Perl: the seed convention's context object, and p5-aws-lambda's convention.
mod perl_conventions;
// `bootstrap serve` with boto3, the AWS CLI and raw HTTP; make install; invoke on a terminal.
mod serve;
// Watching processes from a test: gone (by pidfd), descendants, process groups, FIFO gates.
mod watch;
// Frames bound to their invocation: stray, late, wrong-id or oversized frames never delivered.
mod misdelivery;
// Nothing a handler started escapes: setsid chains, group changes, fork races, tracers, concurrency.
mod containment;
// Clean exits: a failed Runtime API or SIGTERM stops and answers every handler, removes every file.
mod clean_exits;
// Inputs checked where they enter: Content-Type, dot-segment ids, a stalled body, big configs.
mod inputs;
// Log records never spliced: concurrent handlers' long lines each stay in records of their own.
mod log_records;

mod fork;
