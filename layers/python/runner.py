"""Python runner for the `bootstrap` Lambda custom runtime.

Usage: python3 runner.py FILE METHOD   (cwd = LAMBDA_TASK_ROOT)

It gives a handler written for AWS's managed Python runtime what awslambdaric (AWS's runtime
interface client) gives it: the module named by `_HANDLER` imported with importlib from the
task root (`app.handler`, `pkg.module.handler`, `dir/module.handler`; the layers' paths under
/opt/python come next, as on Lambda), the root logger's Lambda handler and format (text, or
JSON under AWS_LAMBDA_LOG_FORMAT=JSON) installed before that import, the event decoded and
the result encoded as its simplejson marshaller does, the full LambdaContext, and the same
error types, messages and stack traces, posted and logged the same way. FILE and METHOD are
used only when `_HANDLER` is absent. Standard library only (Python 3.8+). Two protocols:

Plain (one process per event): the event is stdin. Anything the handler prints goes to the
log (stderr); the response goes to the original stdout, then exit 0. On failure the runner
writes one JSON object {errorMessage, errorType, requestId, stackTrace} to the original
stdout and exits 70. A module that fails to load is that event's error.

Framed (BOOTSTRAP_FRAMED=1; one warm process for many events): the module is imported once,
then the runner serves the invocations bootstrap sends as frames on fds 3 and 4, as
layers/PROTOCOL.md describes; stdout and stderr are both the log.

Logs: awslambdaric writes each log record as one frame of its telemetry channel, so a
multi-line message stays one CloudWatch record. Here the log is a byte stream that Lambda
splits at "\n", so each record is written as one line, with its inner newlines turned into
"\r" (as awslambdaric itself does for the errors it logs to stdout).
"""

import gc
import importlib
import json
import logging
import os
import re
import sys
import time
import traceback

ERROR_EXIT = 70

# awslambdaric's fault types: what it posts when the runtime, not the handler, fails.
MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
UNMARSHAL_ERROR = "Runtime.UnmarshalError"
MARSHAL_ERROR = "Runtime.MarshalError"
CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

# The request (and tenant) the log records belong to: set when an invocation starts and left
# as it is afterwards, as in awslambdaric, so records written at import time carry "".
_request_id = None
_tenant_id = None


class Fault(Exception):
    """A failure of the runtime's own making, posted with this type, message and trace."""

    def __init__(self, error_type, message, trace=None):
        super().__init__(message)
        self.error_type, self.message, self.trace = error_type, message, trace


def _error_document(message, error_type, trace, request_id=None):
    """The error JSON awslambdaric posts, keys in its order; empty values are "" and []."""
    return {
        "errorMessage": message or "",
        "errorType": error_type or "",
        "requestId": "" if request_id is None else request_id,
        "stackTrace": trace or [],
    }


def _describe(exc):
    """An exception as awslambdaric reports it: its class name, str() and the traceback
    formatted from (file, line, function, text) tuples, without the runner's own leading
    frames. Tuples, not FrameSummary objects, so that Python 3.11+ adds no ^^^ markers."""
    frames = [(f.filename, f.lineno, f.name, f.line)
              for f in traceback.extract_tb(exc.__traceback__)]
    for i, frame in enumerate(frames):
        if frame[0] != __file__:
            frames = frames[i:]
            break
    return str(exc), type(exc).__name__, traceback.format_list(frames)


# --- Marshalling: awslambdaric encodes with simplejson and decodes with simplejson.loads. ---

def _ensure_ascii():
    """awslambdaric keeps non-ASCII text as it is on the python3.12+ managed runtimes and
    escapes it (\\u00e9) on older ones, by AWS_EXECUTION_ENV. Without that variable (an
    OS-only runtime such as this one) the interpreter's own version decides."""
    env = os.environ.get("AWS_EXECUTION_ENV")
    if env is None:
        return sys.version_info < (3, 12)
    match = re.match(r"AWS_Lambda_python(\d+)\.(\d+)$", env)
    return not (match and (int(match.group(1)), int(match.group(2))) >= (3, 12))


class _Encoder(json.JSONEncoder):
    """json's C encoder with simplejson's extras: bytes inside a value are UTF-8 text, and a
    Decimal is written with its own digits (NaN as NaN). json cannot write raw text from
    default(), so a Decimal goes out as a placeholder string that encode() then replaces;
    the placeholder holds a random per-process key, so no string of the handler's can pose
    as one."""

    _key = None

    def __init__(self, ensure_ascii):
        super().__init__(ensure_ascii=ensure_ascii, allow_nan=True)
        self._placeholders = False

    def default(self, o):
        if isinstance(o, bytes):
            return str(o, "utf-8")
        decimal = sys.modules.get("decimal")  # no Decimal can exist unless it is loaded
        if decimal is not None and isinstance(o, decimal.Decimal):
            if o.is_nan():
                return float("nan")
            if _Encoder._key is None:
                _Encoder._key = os.urandom(16).hex()
            self._placeholders = True
            return "\0" + _Encoder._key + str(o)
        return super().default(o)

    def encode(self, o):
        self._placeholders = False
        text = super().encode(o)
        if self._placeholders:
            text = re.sub(r'"\\u0000%s([^"]*)"' % _Encoder._key, r"\1", text)
        return text


_encoder = None


def _to_json(value):
    global _encoder
    if _encoder is None:
        _encoder = _Encoder(_ensure_ascii())
    return _encoder.encode(value)


def _marshal(result):
    """The response bytes: bytes as they are, anything else as JSON."""
    if isinstance(result, bytes):
        return result
    try:
        try:
            return _to_json(result).encode("utf-8")
        except TypeError as e:
            # simplejson reads bytes keys as UTF-8 too; json's encoder never asks default().
            if not str(e).endswith("not bytes"):
                raise
            undecodable = []
            try:
                return _to_json(_text_keys(result, {}, undecodable)).encode("utf-8")
            except TypeError as again:
                # The encoder met the first key that is not UTF-8 before any other fault.
                if str(again).endswith("not bytes") and undecodable:
                    raise undecodable[0]
                raise
    except Exception as e:
        raise Fault(MARSHAL_ERROR, "Unable to marshal response: %s" % e)


def _text_keys(value, copies, undecodable):
    """value with its dicts' bytes keys decoded (in the order the encoder visits them; a key
    that is not UTF-8 stays bytes and its error is kept); a cycle stays a cycle."""
    if not isinstance(value, (dict, list, tuple)):
        return value
    if id(value) in copies:
        return copies[id(value)]
    if isinstance(value, dict):
        copy = copies[id(value)] = {}
        for key, item in value.items():
            if isinstance(key, bytes):
                try:
                    key = str(key, "utf-8")
                except UnicodeDecodeError as e:
                    undecodable.append(e)
            copy[key] = _text_keys(item, copies, undecodable)
        return copy
    copy = copies[id(value)] = []
    copy.extend(_text_keys(item, copies, undecodable) for item in value)
    return copy


class _Constant(ValueError):
    """NaN or Infinity in an event: simplejson's loads refuses them, json's accepts them."""


def _refuse_constant(name):
    raise _Constant(name)


_decoder = json.JSONDecoder(parse_constant=_refuse_constant)
_WHITESPACE = re.compile(r"[ \t\n\r]*")
# A JSON string, or one of the characters that open or close a container or a constant.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]|-?Infinity|NaN', re.S)


def _unmarshal(body):
    """The event decoded as simplejson.loads decodes it, errors worded as it words them."""
    try:
        text = str(body, "utf-8")
        start = 0
        if text.startswith("\ufeff"):
            start = 1
        elif text.startswith("\xef\xbb\xbf"):
            start = 3
        start = _WHITESPACE.match(text, start).end()
        try:
            event, end = _decoder.raw_decode(text, start)
        except _Constant:
            raise _constant_error(text, start)
        end = _WHITESPACE.match(text, end).end()
        if end != len(text):
            raise json.JSONDecodeError("Extra data", text, end)
        return event
    except json.JSONDecodeError as e:
        raise Fault(UNMARSHAL_ERROR, "Unable to unmarshal input: %s" % _simplejson_wording(e))
    except Exception as e:
        raise Fault(UNMARSHAL_ERROR, "Unable to unmarshal input: %s" % e)


def _constant_error(text, start):
    for token in _TOKENS.finditer(text, start):
        if token.group()[0] in "-IN":
            return json.JSONDecodeError("Expecting value", text, token.start())
    return json.JSONDecodeError("Expecting value", text, start)


def _simplejson_wording(e):
    """json's decode error in simplejson's words (they differ where simplejson names what
    else it would have taken, and for extra data, where it gives the span)."""
    msg, doc, pos, end = e.msg, e.doc, e.pos, None
    # At the end of the text right after "{" or "[", it names the closing bracket too.
    opened = pos == len(doc) and doc[:pos].rstrip(" \t\n\r")[-1:]
    if msg == "Expecting property name enclosed in double quotes" and opened == "{":
        msg += " or '}'"
    elif msg == "Expecting value" and opened == "[":
        msg += " or ']'"
    elif msg == "Expecting ',' delimiter":
        msg += " or '}'" if _innermost(doc, pos) == "{" else " or ']'"
    elif msg.startswith("Illegal trailing comma"):  # Python 3.13+, at the comma
        pos = _WHITESPACE.match(doc, pos + 1).end()
        msg = ("Expecting value" if msg.endswith("array")
               else "Expecting property name enclosed in double quotes")
    elif msg.startswith("Invalid \\escape"):
        msg = "Invalid \\X escape sequence %r"
    elif msg == "Invalid \\uXXXX escape":
        msg += " sequence"
    elif msg == "Invalid control character at":
        msg = "Invalid control character %r at"
    elif msg == "Extra data":
        end = len(doc)
    msg = msg.replace("%r", repr(doc[pos:pos + 1]))
    where = "line %d column %d" % _line_column(doc, pos)
    if end is None:
        return "%s: %s (char %d)" % (msg, where, pos)
    return "%s: %s - line %d column %d (char %d - %d)" % (
        msg, where, *_line_column(doc, end), pos, end)


def _line_column(doc, pos):
    return doc.count("\n", 0, pos) + 1, pos - doc.rfind("\n", 0, pos)


def _innermost(doc, pos):
    """The bracket of the container open at pos; the text before pos is valid JSON so far."""
    stack = []
    for token in _TOKENS.finditer(doc, 0, pos):
        t = token.group()
        if t in "[{":
            stack.append(t)
        elif t in "]}" and stack:
            stack.pop()
    return stack[-1] if stack else ""


# --- Logging: the root logger's handler and formats, as awslambdaric installs them. ---

_TEXT_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n"
_TEXT_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"
_JSON_DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# LogRecord attributes that are not "extra" fields of a JSON record (taskName, new in 3.12,
# is not among them in awslambdaric either, so a record logged inside a task shows it).
_RECORD_FIELDS = frozenset((
    "name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module",
    "exc_info", "exc_text", "stack_info", "lineno", "funcName", "created", "msecs",
    "relativeCreated", "thread", "threadName", "processName", "process",
    "aws_request_id", "tenant_id", "_frame_type",
))
_NBSP = "\u00a0"


class LogSink(object):
    """Writes one log record per call to whatever sys.stdout is at the time (the log)."""

    def log(self, msg):
        if msg.endswith("\n"):
            msg = msg[:-1]
        line = msg.replace("\n", "\r") + "\n"
        out = sys.stdout
        try:
            out.write(line)
        except UnicodeEncodeError:  # a lone surrogate must not cost the record
            out.write(line.encode("utf-8", "backslashreplace").decode("utf-8"))
        out.flush()

    def log_error(self, message_lines):
        self.log("\r".join(message_lines))


class LambdaLoggerFilter(logging.Filter):
    def filter(self, record):
        record.aws_request_id = _request_id or ""
        record.tenant_id = _tenant_id
        return True


class LambdaLoggerHandler(logging.Handler):
    """The root logger's handler. Like awslambdaric's, it lets a formatting error (an extra
    field JSON cannot encode) reach the caller instead of printing it."""

    def __init__(self, log_sink):
        super().__init__()
        self.log_sink = log_sink

    def emit(self, record):
        self.log_sink.log(self.format(record))


class JsonFormatter(logging.Formatter):
    """awslambdaric's JSON record: timestamp, level, message, logger, requestId, the
    exception's stackTrace, errorType, errorMessage and location, tenantId, then the
    record's extra fields; keys whose value is None are left out."""

    _encode = json.JSONEncoder(ensure_ascii=False).encode

    def __init__(self):
        super().__init__(datefmt=_JSON_DATE_FORMAT)

    def format(self, record):
        # Levels are reported in steps of 10 (a custom level 25 is INFO), on the record itself.
        record.levelno = min(50, max(0, record.levelno)) // 10 * 10
        record.levelname = logging.getLevelName(record.levelno)
        exc = record.exc_info
        fields = {
            "timestamp": self.formatTime(record, self.datefmt),
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
            "stackTrace": traceback.format_tb(exc[2]) if exc else None,
            "errorType": exc[0].__name__ if exc else None,
            "errorMessage": str(exc[1]) if exc else None,
            "requestId": getattr(record, "aws_request_id", None),
            "location": "%s:%s:%s" % (record.pathname, record.funcName, record.lineno)
            if exc else None,
        }
        if getattr(record, "tenant_id", None) is not None:
            fields["tenantId"] = record.tenant_id
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and key not in fields:
                fields[key] = value
        return self._encode({k: v for k, v in fields.items() if v is not None}) + "\n"


_json_logs = False
_sink = LogSink()


def _setup_logging():
    """Installs the Lambda handler on the root logger, before the handler module is imported
    (so that `logging.getLogger().setLevel(logging.INFO)` at module level is all it takes).
    The root level is set only when AWS_LAMBDA_LOG_LEVEL names a level (TRACE is DEBUG);
    otherwise it stays Python's WARNING."""
    global _json_logs
    _json_logs = os.environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON"
    setting = os.environ.get("AWS_LAMBDA_LOG_LEVEL")
    level = "" if setting is None else ("DEBUG" if setting == "TRACE" else setting).upper()

    logging.Formatter.converter = time.gmtime  # UTC for every formatter, as on Lambda
    handler = LambdaLoggerHandler(_sink)
    if _json_logs:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(_TEXT_FORMAT, _TEXT_DATE_FORMAT))
    handler.addFilter(LambdaLoggerFilter())
    root = logging.getLogger()
    if level and isinstance(logging.getLevelName(level), int):
        root.setLevel(level)
    root.addHandler(handler)


def _indent(line):
    """Leading spaces as no-break spaces, so that the console keeps a trace's indentation."""
    stripped = line.lstrip(" ")
    return _NBSP * (len(line) - len(stripped)) + stripped


def _log_error(document):
    """Logs a posted error as awslambdaric does: `[ERROR] Type: message` and the traceback
    as one record, or under the JSON format its error document with timestamp and log_level."""
    if _json_logs:
        record = {"timestamp": time.strftime(_JSON_DATE_FORMAT, time.gmtime()),
                  "log_level": "ERROR"}
        record.update(document)
        _sink.log_error([_to_json(record)])
        return
    head = "[ERROR]"
    if document["errorType"]:
        head += " " + document["errorType"]
    if document["errorMessage"]:
        head += (":" if document["errorType"] else "") + " " + document["errorMessage"]
    lines = [head, "Traceback (most recent call last):"]
    for frame in document["stackTrace"]:
        if frame == "":
            lines.append("")
        else:
            lines.extend(_indent(line) for line in frame.splitlines())
    _sink.log_error(lines)


# --- The context object, shaped as awslambdaric's LambdaContext. ---

def _record_from(cls, values):
    if values is None:
        return None
    record = cls()
    for field in cls.__slots__:
        setattr(record, field, values.get(field))
    return record


class CognitoIdentity(object):
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]

    def __repr__(self):
        return "CognitoIdentity([cognito_identity_id=%s,cognito_identity_pool_id=%s])" % (
            self.cognito_identity_id, self.cognito_identity_pool_id)


class Client(object):
    __slots__ = ["installation_id", "app_title", "app_version_name", "app_version_code",
                 "app_package_name"]

    def __repr__(self):
        return ("Client([installation_id=%s,app_title=%s,app_version_name=%s,"
                "app_version_code=%s,app_package_name=%s])" % (
                    self.installation_id, self.app_title, self.app_version_name,
                    self.app_version_code, self.app_package_name))


class ClientContext(object):
    __slots__ = ["custom", "env", "client"]

    def __repr__(self):
        return "ClientContext([custom=%s,env=%s,client=%s])" % (self.custom, self.env, self.client)


class LambdaContext(object):
    """The handler's second argument. Function-level values come from the environment, as
    strings (memory_limit_in_mb too, as in awslambdaric); per-event ones from the event."""

    def __init__(self, invoke_id, client_context, cognito_identity, epoch_deadline_time_in_ms,
                 invoked_function_arn=None, tenant_id=None):
        env = os.environ
        self.aws_request_id = invoke_id
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id
        self.client_context = _record_from(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = _record_from(Client, self.client_context.client)
        # Always an object, its fields None without a Cognito identity.
        self.identity = _record_from(CognitoIdentity, {})
        if cognito_identity is not None:
            self.identity.cognito_identity_id = cognito_identity.get("cognitoIdentityId")
            self.identity.cognito_identity_pool_id = cognito_identity.get("cognitoIdentityPoolId")
        self._epoch_deadline_time_in_ms = epoch_deadline_time_in_ms

    def get_remaining_time_in_millis(self):
        """Milliseconds left before the deadline; never negative."""
        left = self._epoch_deadline_time_in_ms - int(time.time() * 1000)
        return left if left > 0 else 0

    def log(self, msg):
        """Writes msg to the log as one record, through the Lambda log handler if it is
        still on the root logger."""
        for handler in logging.getLogger().handlers:
            if hasattr(handler, "log_sink"):
                handler.log_sink.log(str(msg))
                return
        sys.stdout.write(str(msg))

    def __repr__(self):
        return (
            "LambdaContext([aws_request_id=%s,log_group_name=%s,log_stream_name=%s,"
            "function_name=%s,memory_limit_in_mb=%s,function_version=%s,"
            "invoked_function_arn=%s,client_context=%s,identity=%s,tenant_id=%s])" % (
                self.aws_request_id, self.log_group_name, self.log_stream_name,
                self.function_name, self.memory_limit_in_mb, self.function_version,
                self.invoked_function_arn, self.client_context, self.identity, self.tenant_id))


def _context_header(text, what):
    if not text:
        return None
    try:
        return json.loads(text)
    except Exception as e:
        raise Fault(CONTEXT_UNMARSHAL_ERROR, "Unable to parse %s JSON: %s" % (what, e))


def _make_context(fields):
    client_context = _context_header(fields.get("client_context"), "Client Context")
    cognito_identity = _context_header(fields.get("cognito_identity"), "Cognito Identity")
    deadline = fields.get("deadline_ms")
    if not isinstance(deadline, int):
        deadline = int(deadline) if isinstance(deadline, str) and deadline.isdigit() else 0
    return LambdaContext(fields.get("aws_request_id"), client_context, cognito_identity,
                         deadline, fields.get("invoked_function_arn"), fields.get("tenant_id"))


# --- Loading the handler, as awslambdaric resolves a handler name. ---

def _handler_name(path, method):
    """`_HANDLER` as bootstrap passes it; without it, the name FILE and METHOD stand for."""
    name = os.environ.get("_HANDLER")
    if name:
        return name
    root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    relative = os.path.relpath(os.path.splitext(path)[0], root)
    if relative.startswith(os.pardir) or os.path.isabs(relative):
        sys.path.insert(0, os.path.dirname(path))
        relative = os.path.basename(relative)
    if os.path.basename(relative) == "__init__":
        relative = os.path.dirname(relative)
    return "%s.%s" % (relative, method)


def _load(name):
    """The handler function `name` names; raises Fault, or the exception the module raised."""
    try:
        module_name, function_name = name.rsplit(".", 1)
    except ValueError as e:
        raise Fault(MALFORMED_HANDLER_NAME, "Bad handler '%s': %s" % (name, e))
    # Module names keep their slashes in messages; the import reads them as dots.
    try:
        if module_name.split(".")[0] in sys.builtin_module_names:
            raise Fault(BUILT_IN_MODULE_CONFLICT,
                        "Cannot use built-in module %s as a handler module" % module_name)
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as e:
        raise Fault(IMPORT_MODULE_ERROR, "Unable to import module '%s': %s" % (module_name, e))
    except SyntaxError as e:
        where = '  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)
        raise Fault(USER_CODE_SYNTAX_ERROR,
                    "Syntax error in module '%s': %s" % (module_name, e), [where])
    try:
        return getattr(module, function_name)
    except AttributeError:
        raise Fault(HANDLER_NOT_FOUND,
                    "Handler '%s' missing on module '%s'" % (function_name, module_name))


def _init(name):
    """(handler, None), or (None, error JSON bytes) for a module that cannot be loaded."""
    try:
        return _load(name), None
    except Fault as f:
        document = _error_document(f.message, f.error_type, f.trace)
    except Exception as e:
        document = _error_document(*_describe(e))
    _log_error(document)
    return None, _error_bytes(document)


def _error_bytes(document):
    return _to_json(document).encode("utf-8", "backslashreplace")


def _invoke(handler, event_bytes, fields):
    """Runs one event: (True, response bytes) or (False, error JSON bytes)."""
    global _request_id, _tenant_id
    _request_id, _tenant_id = fields.get("aws_request_id"), fields.get("tenant_id")
    try:
        context = _make_context(fields)
        event = _unmarshal(event_bytes)
        return True, _marshal(handler(event, context))
    except Fault as f:
        document = _error_document(f.message, f.error_type, f.trace, _request_id)
    except Exception as e:
        document = _error_document(*_describe(e), request_id=_request_id)
    _log_error(document)
    return False, _error_bytes(document)


def _setup_output():
    # UTF-8 whatever the locale (Lambda's is UTF-8); each line reaches the log when written.
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(encoding="utf-8", line_buffering=True)
    _setup_logging()


# The per-event environment variables: where plain mode reads the context from.
ENV_FIELDS = (
    ("aws_request_id", "LAMBDA_RUNTIME_AWS_REQUEST_ID"),
    ("deadline_ms", "LAMBDA_RUNTIME_DEADLINE_MS"),
    ("invoked_function_arn", "LAMBDA_RUNTIME_INVOKED_FUNCTION_ARN"),
    ("client_context", "LAMBDA_RUNTIME_CLIENT_CONTEXT"),
    ("cognito_identity", "LAMBDA_RUNTIME_COGNITO_IDENTITY"),
    ("tenant_id", "LAMBDA_RUNTIME_AWS_TENANT_ID"),
)


def _plain(name):
    event_bytes = sys.stdin.buffer.read()

    # Keep the original stdout (fd 1) for the response; from here on fd 1 is the
    # log, for print() and for subprocesses alike.
    response_fd = os.dup(1)  # not inherited by subprocesses
    os.dup2(2, 1)
    _setup_output()

    handler, body = _init(name)
    status = ERROR_EXIT
    if handler is not None:
        fields = {key: os.environ.get(var) for key, var in ENV_FIELDS}
        ok, body = _invoke(handler, event_bytes, fields)
        status = 0 if ok else ERROR_EXIT
    sys.stdout.flush()
    with open(response_fd, "wb") as response:
        response.write(body)
    return status


# --- The frame protocol (layers/PROTOCOL.md) ---

def _read_exact(stream, size):
    data = stream.read(size)  # a BufferedReader reads until it has `size` bytes or EOF
    if len(data) != size:
        sys.exit("runner: end of file inside a frame (%d of %d bytes)" % (len(data), size))
    return data


def _set_invocation_env(context_bytes):
    """Sets each per-event variable the context frame names, or unsets it when null."""
    try:
        context = json.loads(context_bytes)
    except ValueError as e:
        sys.exit("runner: the invocation context is not JSON: %s" % e)
    if not isinstance(context, dict):
        sys.exit("runner: the invocation context is not a JSON object")
    for name, value in context.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _read_invoke(invocations):
    """One invoke frame: (invocation id, context bytes, event bytes), or None at end of file."""
    header = invocations.readline(64)
    if not header:
        return None
    fields = header[:-1].split(b" ")
    if (not header.endswith(b"\n") or len(fields) != 4 or fields[0] != b"invoke"
            or not all(field.isdigit() for field in fields[1:])):
        sys.exit("runner: malformed frame header %r" % header)
    context_bytes = _read_exact(invocations, int(fields[2]))
    return fields[1], context_bytes, _read_exact(invocations, int(fields[3]))


def _framed(name):
    os.environ.pop("BOOTSTRAP_FRAMED", None)  # not for the handler's own subprocesses
    forking = os.environ.pop("BOOTSTRAP_ISOLATION", None) == "fork"
    fork_dir = os.environ.pop("BOOTSTRAP_FORK_DIR", None)
    for fd in (3, 4):
        os.set_inheritable(fd, False)
    invocations = os.fdopen(3, "rb")
    results = os.fdopen(4, "wb")
    _setup_output()  # fd 1 is the log in this mode

    handler, error = _init(name)
    if handler is None:
        _send(results, b"error", b"0", error)  # invocation 0: the load
        return ERROR_EXIT
    results.write(b"ready\n")
    results.flush()
    if forking:
        return _fork_children(invocations, results, fork_dir, lambda: _serve_one(handler))
    while _serve(handler, invocations, results):
        pass
    return 0  # fd 3 ended: bootstrap retires this worker


def _send(results, verb, invocation, body):
    sys.stdout.flush()  # the handler's last log lines before its result
    sys.stderr.flush()
    results.write(b"%s %s %d\n" % (verb, invocation, len(body)))
    results.write(body)
    results.flush()


def _serve(handler, invocations, results):
    """Reads one invoke frame and answers it; False at the end of fd 3."""
    frame = _read_invoke(invocations)
    if frame is None:
        return False
    invocation, context_bytes, event_bytes = frame
    _set_invocation_env(context_bytes)
    fields = {key: os.environ.get(var) for key, var in ENV_FIELDS}
    ok, body = _invoke(handler, event_bytes, fields)
    _send(results, b"ok" if ok else b"error", invocation, body)
    return True


def _fork_children(control, reports, fork_dir, serve):
    """Fork mode's parent: forks a child for each `fork <n>` frame and says so, reaps child n
    when `reap <n>` asks, and never runs the handler itself (layers/PROTOCOL.md)."""
    children = {}
    # What init made moves out of the collector's reach: a collection in a child would
    # otherwise write to (and so copy) every page of it.
    gc.freeze()
    while True:
        header = control.readline(64)
        if not header:
            return 0  # bootstrap retires the parent
        fields = header[:-1].split(b" ")
        if (not header.endswith(b"\n") or len(fields) != 2 or fields[0] not in (b"fork", b"reap")
                or not fields[1].isdigit() or fields[1].startswith(b"0")):
            sys.exit("runner: malformed frame header %r" % header)
        verb, child = fields
        if verb == b"reap":
            pid = children.pop(child, None)
            if pid is None:
                sys.exit("runner: reap of child %s, which is not one of ours" % child.decode())
            _, status = os.waitpid(pid, 0)
            if os.WIFSIGNALED(status):
                reports.write(b"signal %s %d\n" % (child, os.WTERMSIG(status)))
            else:
                reports.write(b"exit %s %d\n" % (child, os.waitstatus_to_exitcode(status)))
            reports.flush()
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os._exit(_child_status(lambda: _become_child(fork_dir, child.decode(), serve)))
        try:
            os.setpgid(pid, pid)  # as the child does: a group of its own before it is named
        except OSError:
            pass  # it did so already, or has exited
        children[child] = pid
        reports.write(b"child %s %d\n" % (child, pid))
        reports.flush()


def _child_status(run):
    """The exit status of a child that runs `run`, as `python` would exit with it: its
    SystemExit's code (a message is printed, status 1), 1 after any other exception. The child
    then leaves with os._exit: the parent's exit hooks are not its own."""
    try:
        status = run()
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            status = e.code or 0
        else:
            print(e.code, file=sys.stderr)
            status = 1
    except BaseException:  # noqa: B902 - whatever escaped, as the interpreter would report it
        traceback.print_exc()
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    return status & 0xFF


def _become_child(fork_dir, child, serve):
    """In a forked child: its own pipes as fds 3 and 4, its own process group, fresh random
    state, then one event."""
    path = os.path.join(fork_dir, child)
    # Opened without waiting: bootstrap holds its ends already, and if it is gone, opening
    # `.out` fails (no reader) rather than waiting for ever.
    invocations = os.open(path + ".in", os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    results = os.open(path + ".out", os.O_WRONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    os.set_blocking(invocations, True)
    os.set_blocking(results, True)
    os.dup2(invocations, 3, inheritable=False)  # closes the parent's copies first
    os.dup2(results, 4, inheritable=False)
    os.close(invocations)
    os.close(results)
    os.setpgid(0, 0)
    _reseed()
    return serve()


def _reseed():
    """Fresh random state from os.urandom for the generators the handler's code loaded: a
    forked child would repeat its parent's sequence. (Modules that hook os.register_at_fork,
    as `random` itself does, have run their hooks already.)"""
    for module, seed in (("random", "seed"), ("numpy.random", "seed")):
        loaded = sys.modules.get(module)
        if loaded is not None and callable(getattr(loaded, seed, None)):
            getattr(loaded, seed)()


def _serve_one(handler):
    invocations = os.fdopen(3, "rb")
    results = os.fdopen(4, "wb")
    results.write(b"ready\n")
    results.flush()
    _serve(handler, invocations, results)
    return 0


def _layer_paths():
    """Where Lambda's Python runtimes find the packages of the function's layers (unpacked
    into /opt), searched right after the function's own code."""
    layer = os.path.join(os.sep, "opt", "python")
    version = "python%d.%d" % sys.version_info[:2]
    paths = (os.path.join(layer, "lib", version, "site-packages"), layer)
    return [path for path in paths if os.path.isdir(path)]


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: runner.py FILE METHOD\n")
        return 2
    path, method = os.path.abspath(sys.argv[1]), sys.argv[2]
    # No __pycache__ next to the handler (the task root is read-only on Lambda anyway).
    sys.dont_write_bytecode = True
    # bootstrap's own settings are not the handler's.
    os.environ.pop("BOOTSTRAP_CONVENTION", None)
    # The task root first, as on Lambda; the layer directory must not shadow user modules.
    if sys.path and sys.path[0] == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]
    task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    sys.path[0:0] = [task_root] + _layer_paths()
    name = _handler_name(path, method)

    if os.environ.get("BOOTSTRAP_FRAMED") == "1":
        return _framed(name)
    return _plain(name)


if __name__ == "__main__":
    sys.exit(main())
