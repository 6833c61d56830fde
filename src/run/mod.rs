//! Running handlers: the processes that run them, fed and watched, and what became of each
//! event. Nothing here knows HTTP: results leave as an `Outcome`, and a streamed response
//! through the `ResponseStream` port, both defined in `invocation`.
//!
//! - `plain`: a process per event, the event on stdin, the response on stdout;
//! - `framed`: when a framed `worker` starts, serves and retires; a worker is a runner that
//!   loads the handler once and exchanges `frames` on fds 3 and 4;
//! - `unit`: one handler process (under its warden, or alone) and everything it starts;
//! - `reaper`: the running units, and the ending of everything a handler started, by
//!   parentage (`proc`), never by process group;
//! - `child`: what both protocols share: the command, the environment, the output threads,
//!   private temporary files;
//! - `diagnostics`: the errors for a process that went wrong;
//! - `syntax_check`: the interpreter's own check of the handler file;
//! - `sys`: the libc calls (and the warden), the only `unsafe` code.

pub mod child;
pub mod diagnostics;
pub mod fork;
pub mod framed;
pub mod frames;
pub mod plain;
pub mod proc;
pub mod reaper;
pub mod syntax_check;
pub mod sys;
pub mod unit;
pub mod worker;

use crate::init::Handler;
use crate::init::config::Protocol;
use crate::invocation::{Diagnostic, Invocation, OpenStream, Outcome};
use framed::WorkerSlot;

/// How this bootstrap runs the handler, beyond what the config says.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Each invocation (or framed worker) gets a `TMPDIR` of its own: several run at once.
    pub private_tmp: bool,
    /// Several invocations run at once: a plain handler runs under a warden of its own, so
    /// that what it started is told apart from the others' (see `unit`).
    pub concurrent: bool,
}

/// Runs the events of one handler, by its interpreter's protocol. The Lambda loop and
/// `bootstrap invoke` both go through here, so they share one code path.
pub enum Executor {
    Plain(Handler, Options),
    Framed(WorkerSlot),
}

impl Executor {
    /// A streamed response is forwarded from the handler's stdout as it is written, so a
    /// handler whose response mode is streaming always runs the plain way.
    pub fn new(handler: Handler, options: Options) -> Executor {
        match handler.protocol() {
            _ if handler.stream_content_type.is_some() => Executor::Plain(handler, options),
            Protocol::Plain => Executor::Plain(handler, options),
            Protocol::Framed => Executor::Framed(WorkerSlot::new(handler, options)),
        }
    }

    /// Gets ready for the next event before it is asked for: starts the next framed worker
    /// and lets it load the handler. Nothing to do in plain mode.
    pub fn prepare(&mut self) {
        if let Executor::Framed(slot) = self {
            slot.prepare();
        }
    }

    /// Why the runner started ahead could not load the handler, if that is what happened
    /// (`prepare` first). A plain handler loads with each event: never.
    pub fn load_failure(&self) -> Option<Diagnostic> {
        match self {
            Executor::Plain(..) => None,
            Executor::Framed(slot) => slot.load_failure(),
        }
    }

    /// Runs one event. `stream` opens the streamed response, used when the handler streams:
    /// a plain handler whose response mode is streaming, or a framed runner that answers with
    /// a stream.
    pub fn run(&mut self, invocation: &Invocation, stream: OpenStream) -> Outcome {
        match self {
            Executor::Plain(handler, options) => plain::run(handler, invocation, options, stream),
            Executor::Framed(slot) => slot.run(invocation, stream),
        }
    }
}
