//! The Invoke client: one kept-alive connection to the server's Invoke endpoint; each request
//! leaves in a single write, and its latency runs from that write to the last byte of the answer.

use std::io::{self, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::http;
use crate::server::INVOKE_PATH;

pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    host: String,
}

pub struct Reply {
    /// When the request left (its single write began).
    pub sent: Instant,
    pub status: String,
    /// X-Amz-Request-Id: the request id the runtime was given.
    pub request_id: Option<String>,
    /// X-Amz-Function-Error was set: the runtime posted /error.
    pub function_error: Option<String>,
    pub body: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> io::Result<Client> {
        let writer = TcpStream::connect(addr)?;
        writer.set_nodelay(true)?;
        // Longer than the server's own give-up time, so the server always answers first.
        writer.set_read_timeout(Some(Duration::from_secs(60)))?;
        let reader = BufReader::with_capacity(64 * 1024, writer.try_clone()?);
        Ok(Client { reader, writer, host: addr.to_string() })
    }

    /// One invocation; returns the answer and the time from sending to the answer's last byte.
    pub fn invoke(&mut self, event: &[u8]) -> io::Result<(Duration, Reply)> {
        let mut request = Vec::with_capacity(256 + event.len());
        request.extend_from_slice(
            format!(
                "POST {INVOKE_PATH} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
                 X-Amz-Invocation-Type: RequestResponse\r\nContent-Length: {}\r\n\r\n",
                self.host,
                event.len()
            )
            .as_bytes(),
        );
        request.extend_from_slice(event);
        let sent = Instant::now();
        self.writer.write_all(&request)?;
        let head = http::read_head(&mut self.reader)?.ok_or_else(|| {
            io::Error::new(io::ErrorKind::UnexpectedEof, "server closed the connection")
        })?;
        let body = http::read_body(&mut self.reader, &head)?;
        let took = sent.elapsed();
        let function_error = head.header("X-Amz-Function-Error").map(|_| {
            head.header("X-Bench-Error-Type")
                .filter(|t| !t.is_empty())
                .unwrap_or("Unhandled")
                .to_string()
        });
        let status = head.start[1..].join(" ");
        let request_id = head.header("X-Amz-Request-Id").map(str::to_string);
        Ok((took, Reply { sent, status, request_id, function_error, body }))
    }
}
