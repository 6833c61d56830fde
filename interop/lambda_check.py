#!/usr/bin/env python3
"""The Python half of interop/run: bounded waits, and one invoke checked against what it expects.

    lambda_check.py free-port
        print a TCP port on 127.0.0.1 that is free right now
    lambda_check.py wait-port PORT SECONDS PID
        exit 0 once 127.0.0.1:PORT accepts connections; exit 1 after SECONDS, or as soon as
        process PID (the server that should open the port) has exited
    lambda_check.py wait-exit PID SECONDS
        exit 0 once process PID has exited (gone, or a zombie waiting for its parent); 1 after SECONDS
    lambda_check.py invoke CASE PORT FUNCTION PID SECONDS [FIFO]
        send CASE's event to the emulator's Invoke API for FUNCTION (the streaming cases: to
        its function URL, /lambda-url/FUNCTION/, reading the answer chunk by chunk) and check
        the answer; exit 0 if it is what CASE expects, else print why and exit 1. Gives up
        after SECONDS, or as soon as process PID (the bootstrap that should answer) has exited.
        The "stream" case opens FIFO, which its handler waits on, only once "first" has arrived.
    lambda_check.py drained FD SECONDS
        exit 0 once the pipe on file descriptor FD holds no unread bytes (its reader has taken
        everything written to it); 1 after SECONDS. For a streaming handler, so that each of its
        writes reaches bootstrap, and so goes out, as a chunk of its own.

Every wait polls a condition against a deadline; nothing waits for a fixed time.
"""

import array
import errno
import fcntl
import json
import os
import socket
import sys
import termios
import threading
import time
import urllib.error
import urllib.request

POLL_INTERVAL = 0.02  # seconds between two looks at a condition

# The events, and what the answer to each must be. A checker gets the HTTP status and the body
# of the Invoke API's answer and returns a list of problems (empty when all is well).

PERL_EVENT = {"request": "Hey perl lambda!!"}
PYTHON_EVENT = {"request": "Hey python lambda!!"}
# Nested values, a float, null, non-ASCII text and a quote: the shell handler pastes the event
# text into its answer, so any change to the bytes on the way in shows up here.
SHELL_EVENT = {
    "request": "Hey shell lambda!!",
    "nested": {"list": [1, 2.5, None, True], "quote": 'say "hi"'},
    "text": "caf\u00e9 \u2713",
}
ERROR_EVENT = {"request": "please fail"}


def decode_object(body):
    """The body as a JSON object, or a string saying why it is not one."""
    try:
        value = json.loads(body)
    except ValueError as e:
        return None, f"the body is not JSON ({e}): {body[:300]!r}"
    if not isinstance(value, dict):
        return None, f"the body is JSON but not an object: {body[:300]!r}"
    return value, None


def expect_fields(status, body, expected_status, fields):
    """Problems unless the answer has expected_status and a JSON object body with these fields."""
    problems = []
    if status != expected_status:
        problems.append(f"HTTP status {status}, expected {expected_status}")
    obj, error = decode_object(body)
    if error:
        return problems + [error]
    for key, want in fields.items():
        if key not in obj:
            problems.append(f"no {key!r} in the answer")
        elif obj[key] != want:
            problems.append(f"{key!r} is {obj[key]!r}, expected {want!r}")
    return problems


def check_perl_seed(status, body):
    return expect_fields(status, body, 200, {
        "request": PERL_EVENT["request"],
        "reply": "Thanks AWS custom lambda runtime!!",
    })


def check_python(status, body):
    return expect_fields(status, body, 200, {
        "request": PYTHON_EVENT["request"],
        "reply": "Thanks from Python",
    })


def check_shell(status, body):
    return expect_fields(status, body, 200, {"received": SHELL_EVENT})


def check_python_error(status, body):
    # The emulator answers a failed invoke with HTTP 500 and the document bootstrap posted to
    # /error as the body (Lambda would answer 200 with X-Amz-Function-Error). A 200 here means
    # the error went to /response instead.
    return expect_fields(status, body, 500, {
        "errorType": "ValueError",
        "errorMessage": "interop boom",
    })


# The streaming cases. Their shell handlers (written by interop/run) run with
# BOOTSTRAP_RESPONSE_MODE=streaming and are called through the function URL. The emulator
# streams only HTTP-integration responses, and reads them by HTTP chunk: the first chunk must be
# the JSON prelude alone (with "cookies", which it requires), the second is dropped unread as the
# 8-NUL separator, and the rest is passed on to the caller chunk by chunk. So these handlers
# write each of those pieces only once bootstrap has taken the one before (lambda_check.py
# drained). Their answers are checked as a Streamed (below).

STREAM_EVENT = {"request": "stream please"}
# The header that the handlers' prelude sets, to show that the emulator applied the prelude.
STREAM_HEADER = ("x-interop", "streamed")


class Streamed:
    """An answer read chunk by chunk: status, headers (names in lower case), the body so far,
    whether it ended cleanly (the last chunk, or a complete Content-Length body), the trailers
    after the last chunk, and for the "stream" case the body as it was when "first" arrived."""

    def __init__(self):
        self.status = None
        self.headers = {}
        self.chunked = False
        self.body = b""
        self.ended = False
        self.trailers = {}
        self.at_first = None


def stream_problems(answer, status, body):
    """Problems unless answer has this status, the prelude's header and this body."""
    problems = []
    if answer.status != status:
        problems.append(f"HTTP status {answer.status}, expected {status}")
    name, value = STREAM_HEADER
    if answer.headers.get(name) != value:
        problems.append(f"header {name} is {answer.headers.get(name)!r}, expected {value!r}"
                        " (the handler's prelude)")
    if not answer.chunked:
        problems.append("the answer is not chunked, so not streamed")
    if answer.body != body:
        problems.append(f"the body is {answer.body!r}, expected {body!r}")
    return problems


def check_stream(answer):
    problems = stream_problems(answer, 200, b"first\nsecond\n")
    # The handler does not print "second" before the FIFO is opened, which happens only once
    # "first" has been read here: "first" arrived while the handler was still running.
    if answer.at_first is None:
        problems.append('"first" never arrived on its own')
    elif answer.at_first != b"first\n":
        problems.append(f'when "first" arrived the body was {answer.at_first!r}')
    if not answer.ended:
        problems.append("the stream did not end with the last chunk")
    if answer.trailers:
        problems.append(f"unexpected trailers {answer.trailers!r}")
    return problems


def check_stream_exit(answer):
    # The handler wrote its prelude and "partial output", then exited 3: bootstrap ends the
    # stream with the last chunk and the Lambda-Runtime-Function-Error-Type/-Body trailers
    # (Runtime.ExitError; its tests check those bytes). The emulator drops the trailers and,
    # since bootstrap's post says "Connection: close", ends the caller's stream as it would a
    # success (a post that kept its connection open would leave the caller's stream hanging,
    # then cut off when the connection closes): neither the error type nor the error document
    # reaches the caller, in trailers, headers or status.
    problems = stream_problems(answer, 200, b"partial output\n")
    if not answer.ended:
        problems.append("the stream was cut off; the emulator ends it cleanly after a stream"
                        " that bootstrap ended with error trailers")
    if answer.trailers:
        problems.append(f"trailers {answer.trailers!r}: the emulator has begun to pass them on")
    leaked = [name for name in answer.headers if name.startswith("lambda-runtime-function-error")]
    if leaked:
        problems.append(f"error headers {leaked}: the emulator has begun to pass the error on")
    return problems


def check_stream_no_prelude(answer):
    # A plain stream ("first", "second", no prelude): the emulator cannot parse its first
    # chunk as a prelude, answers the caller 500 with its own problem document, and drops the
    # connection bootstrap streams on. The handler's output never reaches the caller.
    text = answer.body.decode("utf-8", "replace")
    problems = expect_fields(answer.status, text, 500,
                             {"status": 500, "title": "Internal Server Error"})
    if b"first" in answer.body:
        problems.append("the handler's output reached the caller")
    return problems


# CASE: (event, checker, streamed). A streamed case goes to the function URL and its checker
# gets a Streamed; the others go to the Invoke API and their checkers get (status, body text).
CASES = {
    "perl-seed": (PERL_EVENT, check_perl_seed, False),
    "python": (PYTHON_EVENT, check_python, False),
    "shell": (SHELL_EVENT, check_shell, False),
    "python-error": (ERROR_EVENT, check_python_error, False),
    "stream": (STREAM_EVENT, check_stream, True),
    "stream-exit": (STREAM_EVENT, check_stream_exit, True),
    "stream-no-prelude": (STREAM_EVENT, check_stream_no_prelude, True),
}


def running(pid):
    """True while process pid exists and has not exited (a zombie counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except FileNotFoundError:
        return False
    # The state is the first field after the parenthesised command name.
    return stat[stat.rindex(")") + 2] != "Z"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])
    return 0


def wait_port(port, seconds, pid):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not running(pid):
            print(f"process {pid} exited before 127.0.0.1:{port} accepted connections")
            return 1
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return 0
        except OSError:
            time.sleep(POLL_INTERVAL)
    print(f"127.0.0.1:{port} accepted no connection within {seconds:g} s")
    return 1


def wait_exit(pid, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not running(pid):
            return 0
        time.sleep(POLL_INTERVAL)
    return 1


def drained(fd, seconds):
    # stdout may be that very pipe: say nothing there.
    deadline = time.monotonic() + seconds
    unread = array.array("i", [0])
    while True:
        fcntl.ioctl(fd, termios.FIONREAD, unread)  # works on either end of a pipe
        if unread[0] == 0:
            return 0
        if time.monotonic() >= deadline:
            print(f"{unread[0]} bytes still unread in the pipe on fd {fd} after {seconds:g} s",
                  file=sys.stderr)
            return 1
        time.sleep(POLL_INTERVAL)


def release(fifo, deadline):
    """Open fifo for writing once its reader (a handler waiting on it) has opened it, write a
    line and close it; True if that happened before deadline."""
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            if e.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_INTERVAL)
            continue
        try:
            os.write(fd, b"go\n")
        finally:
            os.close(fd)
        return True


MAX_LINE = 64 * 1024  # longest status, header or chunk-size line read


def read_line(reader):
    """One CRLF-terminated line, or None if the connection closed before its end."""
    line = reader.readline(MAX_LINE)
    return line if line.endswith(b"\r\n") else None


def read_fields(reader):
    """Header (or trailer) fields up to the empty line, names in lower case."""
    fields = {}
    while True:
        line = read_line(reader)
        if line is None:
            raise ValueError("the connection closed inside a header")
        if line == b"\r\n":
            return fields
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise ValueError(f"not a header field: {line!r}")
        fields[name.strip().lower()] = value.strip()


def stream(port, path, data, seconds, fifo, result):
    """POST data to path on 127.0.0.1:port and read the answer chunk by chunk into
    result["answer"], a Streamed; store an exception in result["error"]. With fifo, release
    the handler waiting on it as soon as the body holds "first"."""
    deadline = time.monotonic() + seconds
    answer = result["answer"] = Streamed()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=seconds) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                "Connection: close\r\n\r\n".encode() + data)
            reader = sock.makefile("rb")
            status_line = read_line(reader) or b""
            parts = status_line.split(None, 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
                raise ValueError(f"not an HTTP status line: {status_line!r}")
            answer.status = int(parts[1])
            answer.headers = read_fields(reader)
            answer.chunked = answer.headers.get("transfer-encoding", "").lower() == "chunked"
            if not answer.chunked:
                length = answer.headers.get("content-length")
                answer.body = reader.read(int(length)) if length else reader.read()
                answer.ended = not length or len(answer.body) == int(length)
                return
            while True:
                size_line = read_line(reader)
                if size_line is None:
                    return  # cut: the connection closed before the last chunk
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    answer.trailers = read_fields(reader)
                    answer.ended = True
                    return
                chunk = reader.read(size + 2)
                answer.body += chunk[:size]
                if len(chunk) < size + 2:
                    return  # cut inside a chunk
                if chunk[size:] != b"\r\n":
                    raise ValueError(f"a chunk of {size} bytes is not followed by CRLF")
                if fifo and answer.at_first is None and b"first\n" in answer.body:
                    answer.at_first = answer.body
                    if not release(fifo, deadline):
                        raise TimeoutError(f"the handler never opened {fifo}")
    except Exception as e:  # reported as the reason the check failed
        result["error"] = e


def describe(answer):
    """An answer, for a failed check."""
    if isinstance(answer, Streamed):
        how = "ended with the last chunk" if answer.ended else "cut off (no last chunk)"
        if not answer.chunked:
            how = "not chunked"
        return (f"HTTP {answer.status}, headers {answer.headers}, {how}, trailers "
                f"{answer.trailers}, body {answer.body[:1000]!r}")
    status, body = answer
    return f"HTTP {status}: {body[:1000]}"


def post(url, data, seconds, result):
    """POST data to url; store (status, body text) or the exception in result."""
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=seconds) as response:
            result["answer"] = (response.status, response.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as e:
        result["answer"] = (e.code, e.read().decode("utf-8", "replace"))
    except Exception as e:  # reported as the reason the check failed
        result["error"] = e


def invoke(case, port, function, pid, seconds, fifo=None):
    try:
        return invoke_once(case, port, function, pid, seconds, fifo)
    finally:
        # A handler still waiting on the FIFO (the check failed early) is let go.
        if fifo:
            try:
                release(fifo, time.monotonic())
            except OSError as e:
                print(f"cannot release the handler through {fifo}: {e}")


def invoke_once(case, port, function, pid, seconds, fifo):
    event, check, streamed = CASES[case]
    data = json.dumps(event).encode()
    result = {}
    if streamed:
        args = (port, f"/lambda-url/{function}/", data, seconds, fifo, result)
        sender = threading.Thread(target=stream, args=args, daemon=True)
    else:
        url = f"http://127.0.0.1:{port}/2015-03-31/functions/{function}/invocations"
        sender = threading.Thread(target=post, args=(url, data, seconds, result), daemon=True)
    sender.start()
    deadline = time.monotonic() + seconds
    while sender.is_alive() and time.monotonic() < deadline:
        if not running(pid):
            # Let an answer already on its way arrive before declaring the runtime dead.
            sender.join(1)
            if sender.is_alive():
                print(f"bootstrap (pid {pid}) exited before the invoke was answered")
                return 1
        sender.join(POLL_INTERVAL)
    if sender.is_alive():
        print(f"no answer to the invoke within {seconds:g} s")
        return 1
    if "error" in result:
        print(f"the invoke failed: {result['error']!r}")
        if "answer" in result:
            print(f"answer so far: {describe(result['answer'])}")
        return 1
    answer = result["answer"]
    problems = check(answer) if streamed else check(*answer)
    for problem in problems:
        print(problem)
    if problems:
        print(f"full answer: {describe(answer)}")
    return 1 if problems else 0


def main(argv):
    command, args = (argv[1], argv[2:]) if len(argv) > 1 else ("", [])
    if command == "free-port" and not args:
        return free_port()
    if command == "wait-port" and len(args) == 3:
        return wait_port(int(args[0]), float(args[1]), int(args[2]))
    if command == "wait-exit" and len(args) == 2:
        return wait_exit(int(args[0]), float(args[1]))
    if command == "invoke" and len(args) in (5, 6) and args[0] in CASES:
        return invoke(args[0], int(args[1]), args[2], int(args[3]), float(args[4]), *args[5:])
    if command == "drained" and len(args) == 2:
        return drained(int(args[0]), float(args[1]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
