//! Runs events for one handler, by its interpreter's protocol: a plain process per event
//! (`invoke`), or framed workers started ahead of the event (`worker`). The Lambda loop and
//! `bootstrap invoke` both go through here, so they share one code path.

use crate::config::Protocol;
use crate::handler::Handler;
use crate::invocation::Invocation;
use crate::invoke::{self, OpenStream, Outcome};
use crate::worker::Workers;

pub enum Executor {
    Plain(Handler),
    Framed(Workers),
}

impl Executor {
    /// A streamed response is forwarded from the handler's stdout as it is written, so a
    /// streaming handler always runs the plain way.
    pub fn new(handler: Handler) -> Executor {
        match handler.protocol() {
            _ if handler.stream_content_type.is_some() => Executor::Plain(handler),
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

    /// Runs one event. `stream` opens the streamed response, used when the handler streams:
    /// a plain handler whose response mode is streaming, or a framed runner that answers with
    /// a stream.
    pub fn invoke(&mut self, invocation: &Invocation, stream: OpenStream) -> Outcome {
        match self {
            Executor::Plain(handler) => invoke::invoke(handler, invocation, stream),
            Executor::Framed(workers) => workers.invoke(invocation, stream),
        }
    }
}
