"""Python runner for the `bootstrap` Lambda custom runtime.

Usage: python3 runner.py FILE METHOD   (cwd = LAMBDA_TASK_ROOT)
Imports FILE as a module named after its stem, decodes the event as JSON and calls
METHOD(event, context) as in AWS's managed Python runtime. Standard library only
(Python 3.8+). Two protocols:

Plain (one process per event): the event is stdin. Anything the handler prints goes
to the log (stderr); the response goes to the original stdout as json.dumps(result),
then exit 0. On failure the runner writes one JSON object {errorType, errorMessage,
stackTrace} to the original stdout and exits 70.

Framed (BOOTSTRAP_FRAMED=1; one warm process for many events): the module is imported
once, then "ready\n" is written to fd 4 (or "error <len>\n<diagnostic>", then exit 70).
Each "invoke <context_len> <event_len>\n<context JSON><event>" read from fd 3 sets
the LAMBDA_RUNTIME_* variables from the context, calls the handler and answers on fd 4
with "ok <len>\n<response>" or "error <len>\n<diagnostic>". End of file on fd 3: exit 0.
stdout and stderr are both the log.
"""

import json
import os
import sys
import time

ERROR_EXIT = 70


class Failure(Exception):
    def __init__(self, error_type, message, stack=()):
        super().__init__(message)
        self.error_type, self.message, self.stack = error_type, message, list(stack)


class Context:
    """The second handler argument, shaped like AWS's LambdaContext."""

    def __init__(self, env):
        self.aws_request_id = env.get("LAMBDA_RUNTIME_AWS_REQUEST_ID")
        self.invoked_function_arn = env.get("LAMBDA_RUNTIME_INVOKED_FUNCTION_ARN")
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
        memory = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.memory_limit_in_mb = int(memory) if memory and memory.isdigit() else memory
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.tenant_id = env.get("LAMBDA_RUNTIME_AWS_TENANT_ID")
        self.client_context = _json_or_raw(env.get("LAMBDA_RUNTIME_CLIENT_CONTEXT"))
        self.identity = _json_or_raw(env.get("LAMBDA_RUNTIME_COGNITO_IDENTITY"))
        deadline = env.get("LAMBDA_RUNTIME_DEADLINE_MS", "")
        self._deadline_ms = int(deadline) if deadline.isdigit() else None

    def get_remaining_time_in_millis(self):
        """Milliseconds left before the deadline; never negative, 0 when unknown."""
        if self._deadline_ms is None:
            return 0
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _json_or_raw(text):
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _user_frames(tb):
    """Traceback lines of the user's code (the runner's own frames are left out)."""
    import traceback
    frames = [f for f in traceback.extract_tb(tb)
              if f.filename != __file__ and not f.filename.startswith("<frozen ")]
    return [line.rstrip("\n") for line in traceback.format_list(frames)]


def _load(path, method):
    import importlib.machinery
    import importlib.util

    name = os.path.splitext(os.path.basename(path))[0]
    for directory in (os.environ.get("LAMBDA_TASK_ROOT"), os.path.dirname(path)):
        if directory and directory not in sys.path:
            sys.path.insert(0, directory)
    try:
        loader = importlib.machinery.SourceFileLoader(name, path)
        spec = importlib.util.spec_from_file_location(name, path, loader=loader)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    except SyntaxError as e:
        where = ['  File "%s", line %s' % (e.filename, e.lineno)]
        if e.text:
            where.append("    " + e.text.strip())
        raise Failure("Runtime.UserCodeSyntaxError",
                      "Syntax error in module '%s': %s" % (name, e), where)
    except Exception as e:
        raise Failure("Runtime.ImportModuleError",
                      "Unable to import module '%s': %s" % (name, e),
                      _user_frames(e.__traceback__))

    handler = getattr(module, method, None)
    if not callable(handler):
        raise Failure("Runtime.HandlerNotFound",
                      "Handler '%s' missing on module '%s' (%s)" % (method, name, path))
    return handler


def _default(value):
    """json.dumps fallback: Decimal (e.g. from DynamoDB) becomes a number."""
    import decimal
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError("Object of type %s is not JSON serializable" % type(value).__name__)


def _call(handler, event_bytes):
    """Decode the event, call the handler and encode its result; raises Failure."""
    try:
        event = json.loads(event_bytes)
    except (ValueError, RecursionError) as e:  # RecursionError: nested too deep
        raise Failure("Runtime.UnmarshalError", "Unable to parse the event as JSON: %s" % e)
    try:
        result = handler(event, Context(os.environ))
    except Exception as e:
        raise Failure(type(e).__name__, str(e), _user_frames(e.__traceback__))
    try:
        return json.dumps(result, default=_default).encode("utf-8")
    except (TypeError, ValueError, OverflowError, RecursionError) as e:
        raise Failure("Runtime.MarshalError", "Unable to marshal the response: %s" % e)


def _diagnostic(f):
    """Log a one-line summary of a Failure and return its JSON document (bytes)."""
    sys.stderr.write("ERROR [%s] %s\n" % (f.error_type, " | ".join(f.message.splitlines())))
    error = {"errorType": f.error_type, "errorMessage": f.message, "stackTrace": f.stack}
    return json.dumps(error).encode("utf-8")


def _plain(path, method):
    event_bytes = sys.stdin.buffer.read()

    # Keep the original stdout (fd 1) for the response; from here on fd 1 is the
    # log, for print() and for subprocesses alike.
    response_fd = os.dup(1)  # not inherited by subprocesses
    os.dup2(2, 1)
    sys.stdout.reconfigure(line_buffering=True)

    try:
        body, status = _call(_load(path, method), event_bytes), 0
    except Failure as f:
        body, status = _diagnostic(f), ERROR_EXIT

    with open(response_fd, "wb") as response:
        response.write(body)
    return status


# The environment variables set from each key of a framed invocation's context.
CONTEXT_ENV = (
    ("aws_request_id", ("LAMBDA_RUNTIME_AWS_REQUEST_ID",)),
    ("deadline_ms", ("LAMBDA_RUNTIME_DEADLINE_MS",)),
    ("invoked_function_arn", ("LAMBDA_RUNTIME_INVOKED_FUNCTION_ARN",)),
    ("trace_id", ("LAMBDA_RUNTIME_TRACE_ID", "_X_AMZN_TRACE_ID")),
    ("client_context", ("LAMBDA_RUNTIME_CLIENT_CONTEXT",)),
    ("cognito_identity", ("LAMBDA_RUNTIME_COGNITO_IDENTITY",)),
    ("tenant_id", ("LAMBDA_RUNTIME_AWS_TENANT_ID",)),
)


def _read_exact(stream, size):
    data = stream.read(size)  # a BufferedReader reads until it has `size` bytes or EOF
    if len(data) != size:
        sys.exit("runner: end of file inside a frame (%d of %d bytes)" % (len(data), size))
    return data


def _set_invocation_env(context_bytes):
    try:
        context = json.loads(context_bytes)
    except ValueError as e:
        sys.exit("runner: the invocation context is not JSON: %s" % e)
    for key, names in CONTEXT_ENV:
        value = context.get(key)
        for name in names:
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value if isinstance(value, str) else json.dumps(value)


def _framed(path, method):
    os.environ.pop("BOOTSTRAP_FRAMED", None)  # not for the handler's own subprocesses
    for fd in (3, 4):
        os.set_inheritable(fd, False)
    invocations = os.fdopen(3, "rb")
    results = os.fdopen(4, "wb")
    sys.stdout.reconfigure(line_buffering=True)  # fd 1 is the log in this mode

    def send(verb, body):
        sys.stdout.flush()  # the handler's last log lines before its result
        results.write(b"%s %d\n" % (verb, len(body)))
        results.write(body)
        results.flush()

    try:
        handler = _load(path, method)
    except Failure as f:
        send(b"error", _diagnostic(f))
        return ERROR_EXIT
    results.write(b"ready\n")
    results.flush()

    while True:
        header = invocations.readline(64)
        if not header:
            return 0  # bootstrap retires this worker
        fields = header.split()
        if (not header.endswith(b"\n") or len(fields) != 3 or fields[0] != b"invoke"
                or not (fields[1].isdigit() and fields[2].isdigit())):
            sys.exit("runner: malformed frame header %r" % header)
        context_bytes = _read_exact(invocations, int(fields[1]))
        event_bytes = _read_exact(invocations, int(fields[2]))
        _set_invocation_env(context_bytes)
        try:
            send(b"ok", _call(handler, event_bytes))
        except Failure as f:
            send(b"error", _diagnostic(f))


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: runner.py FILE METHOD\n")
        return 2
    path, method = os.path.abspath(sys.argv[1]), sys.argv[2]
    # No __pycache__ next to the handler (the task root is read-only on Lambda anyway).
    sys.dont_write_bytecode = True
    # Do not let the layer directory shadow the user's modules.
    if sys.path and sys.path[0] == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]

    if os.environ.get("BOOTSTRAP_FRAMED") == "1":
        return _framed(path, method)
    return _plain(path, method)


if __name__ == "__main__":
    sys.exit(main())
