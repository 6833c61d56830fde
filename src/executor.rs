//! Runs events for one handler, by its interpreter's protocol: a plain process per event
//! (`invoke`), or framed workers started ahead of the event (`worker`). The Lambda loop and
//! `bootstrap invoke` both go through here, so they share one code path.

use crate::config::Protocol;
use crate::handler::Handler;
use crate::invocation::Invocation;
use crate::invoke::{self, Outcome};
use crate::worker::Workers;

pub enum Executor {
    Plain(Handler),
    Framed(Workers),
}

impl Executor {
    pub fn new(handler: Handler) -> Executor {
        match handler.protocol() {
            Protocol::Plain => Executor::Plain(handler),
            Protocol::Framed => Executor::Framed(Workers::new(handler)),
        }
    }

    /// Gets ready for the next event before it is asked for: starts the next framed worker
    /// and lets it load the handler. Nothing to do in plain mode.
    pub fn prepare(&mut self) {
        if let Executor::Framed(workers) = self {
            workers.prepare();
        }
    }

    pub fn invoke(&mut self, invocation: &Invocation) -> Outcome {
        match self {
            Executor::Plain(handler) => invoke::invoke(handler, invocation),
            Executor::Framed(workers) => workers.invoke(invocation),
        }
    }
}
