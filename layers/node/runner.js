// Node.js runner for the `bootstrap` Lambda custom runtime (CommonJS, Node 18+).
//
// Usage: node runner.js FILE METHOD   (cwd = LAMBDA_TASK_ROOT)
// Loads FILE (require, or import() for ES modules), decodes the event as JSON and
// calls exports[METHOD](event, context) as in AWS's managed Node runtime: sync,
// async/promise and callback (event, context, callback) handlers all work. The
// response is JSON.stringify(result); a failure is one JSON object {errorType,
// errorMessage, stackTrace}. Two protocols:
//
// Plain (one process per event): the event is stdin. console.log and
// process.stdout.write go to the log (stderr); the response goes to the original
// stdout, then exit 0; a failure goes there too, then exit 70. The process exits as
// soon as the response is written, so timers or sockets left open by the handler
// never keep it alive.
//
// Framed (BOOTSTRAP_FRAMED=1; one warm process for many events): FILE is loaded once,
// then "ready\n" is written to fd 4 (or "error <len>\n<failure>", then exit 70). Each
// "invoke <context_len> <event_len>\n<context JSON><event>" read from fd 3 sets the
// LAMBDA_RUNTIME_* variables from the context, calls the handler and answers on fd 4
// with "ok <len>\n<response>" or "error <len>\n<failure>". End of file on fd 3: exit
// 0. stdout and stderr are both the log. An exception or rejection nobody handles
// while an event runs fails that event. Between events nothing runs: the runner
// blocks on fd 3, so the handler's timers wait for the next event.
'use strict';

const fs = require('fs');
const path = require('path');

const ERROR_EXIT = 70;
const FRAMED = process.env.BOOTSTRAP_FRAMED === '1';

// Plain protocol: keep the real stdout for the response; everything else written to
// stdout is log.
const writeResponse = process.stdout.write.bind(process.stdout);
if (!FRAMED) process.stdout.write = process.stderr.write.bind(process.stderr);

class Failure extends Error {
  constructor(errorType, message, stackTrace = []) {
    super(message);
    this.errorType = errorType;
    this.stackTrace = stackTrace;
  }
}

let finished = false;

function respond(body, code) {
  if (finished) return;
  finished = true;
  writeResponse(body, () => process.exit(code));
}

function fail(err) {
  respond(diagnostic(err), ERROR_EXIT);
}

// Anything thrown as its JSON document, with a summary line to the log.
function diagnostic(err) {
  const error = describe(err);
  process.stderr.write(`ERROR [${error.errorType}] ${error.errorMessage.split('\n').join(' | ')}\n`);
  return JSON.stringify(error);
}

// Turn anything thrown into {errorType, errorMessage, stackTrace}.
function describe(err) {
  if (err instanceof Failure) {
    return { errorType: err.errorType, errorMessage: err.message, stackTrace: err.stackTrace };
  }
  if (err instanceof Error) {
    return { errorType: String(err.name || 'Error'), errorMessage: String(err.message), stackTrace: stackLines(err) };
  }
  let message;
  try {
    message = typeof err === 'string' ? err : JSON.stringify(err) ?? String(err);
  } catch {
    message = String(err);
  }
  return { errorType: 'Error', errorMessage: message, stackTrace: [] };
}

// The stack frames of an error, without the runner's own and Node's internal ones.
// A SyntaxError's stack also starts with the offending file:line and source line.
function stackLines(err) {
  const lines = String(err.stack || '').split('\n');
  const header = lines.findIndex((line) => line.startsWith(`${err.name}:`));
  const location = err instanceof SyntaxError && header > 0 ? lines.slice(0, header) : [];
  const frames = lines.filter((line) => /^\s+at /.test(line));
  return [...location, ...frames].filter(
    (line) =>
      line.trim() !== '' &&
      !line.includes(__filename) &&
      !line.includes('node:internal') &&
      !line.includes('at new Promise (<anonymous>)'),
  );
}

async function load(file) {
  const importIt = () => import(require('url').pathToFileURL(file).href);
  if (file.endsWith('.mjs')) return importIt();
  try {
    return require(file);
  } catch (err) {
    if (err && (err.code === 'ERR_REQUIRE_ESM' || err.code === 'ERR_REQUIRE_ASYNC_MODULE')) {
      return importIt();
    }
    throw err;
  }
}

function findHandler(mod, method) {
  for (const scope of [mod, mod && mod.default]) {
    if (scope && typeof scope[method] === 'function') return scope[method];
  }
  return undefined;
}

function parseOrRaw(text) {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function makeContext(env) {
  const deadline = /^\d+$/.test(env.LAMBDA_RUNTIME_DEADLINE_MS || '')
    ? Number(env.LAMBDA_RUNTIME_DEADLINE_MS)
    : undefined;
  return {
    awsRequestId: env.LAMBDA_RUNTIME_AWS_REQUEST_ID,
    invokedFunctionArn: env.LAMBDA_RUNTIME_INVOKED_FUNCTION_ARN,
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    clientContext: parseOrRaw(env.LAMBDA_RUNTIME_CLIENT_CONTEXT),
    identity: parseOrRaw(env.LAMBDA_RUNTIME_COGNITO_IDENTITY),
    tenantId: env.LAMBDA_RUNTIME_AWS_TENANT_ID,
    callbackWaitsForEmptyEventLoop: false, // the response is sent as soon as the handler settles
    // Milliseconds left before the deadline; never negative, 0 when unknown.
    getRemainingTimeInMillis: () => (deadline === undefined ? 0 : Math.max(0, deadline - Date.now())),
  };
}

// Call the handler; settle with its promise, its return value, or its callback.
function invoke(handler, event, context) {
  return new Promise((resolve, reject) => {
    if (handler.length >= 3) {
      const callback = (err, value) => (err != null ? reject(err) : resolve(value));
      const returned = handler(event, context, callback);
      if (returned && typeof returned.then === 'function') returned.then(resolve, reject);
    } else {
      resolve(handler(event, context));
    }
  });
}

// The handler function of FILE; throws a Failure when it cannot be loaded or has no METHOD.
async function loadHandler(file, method) {
  let mod;
  try {
    mod = await load(file);
  } catch (err) {
    const { errorType, errorMessage, stackTrace } = describe(err);
    const syntax = err instanceof SyntaxError;
    // import() reports no location for a SyntaxError; at least name the file.
    if (syntax && stackTrace.length === 0) stackTrace.push(file);
    throw new Failure(
      syntax ? 'Runtime.UserCodeSyntaxError' : 'Runtime.ImportModuleError',
      `${errorType}: ${errorMessage}`,
      stackTrace,
    );
  }

  const handler = findHandler(mod, method);
  if (!handler) {
    throw new Failure('Runtime.HandlerNotFound', `Handler '${method}' is not a function exported by ${file}`);
  }
  return handler;
}

// Decodes the event (bytes), calls the handler with a context from process.env and
// returns the response text; throws what the handler threw, or a Failure.
async function runEvent(handler, input) {
  let event;
  try {
    event = JSON.parse(input.toString('utf8'));
  } catch (err) {
    throw new Failure('Runtime.UnmarshalError', `Unable to parse the event as JSON: ${err.message}`);
  }

  const result = await invoke(handler, event, makeContext(process.env));

  let body;
  try {
    body = JSON.stringify(result);
  } catch (err) {
    throw new Failure('Runtime.MarshalError', `Unable to stringify the response: ${err.message}`);
  }
  return body === undefined ? 'null' : body;
}

function args() {
  const [fileArg, method] = process.argv.slice(2);
  if (!fileArg || !method) {
    process.stderr.write('usage: runner.js FILE METHOD\n');
    process.exit(2);
  }
  return [path.resolve(fileArg), method];
}

async function plain() {
  const [file, method] = args();
  const input = fs.readFileSync(0); // the whole event, as bytes
  const handler = await loadHandler(file, method);
  respond(await runEvent(handler, input), 0);
}

// --- The framed protocol -------------------------------------------------------------

// The environment variables set from each key of an invocation's context.
const CONTEXT_ENV = {
  aws_request_id: ['LAMBDA_RUNTIME_AWS_REQUEST_ID'],
  deadline_ms: ['LAMBDA_RUNTIME_DEADLINE_MS'],
  invoked_function_arn: ['LAMBDA_RUNTIME_INVOKED_FUNCTION_ARN'],
  trace_id: ['LAMBDA_RUNTIME_TRACE_ID', '_X_AMZN_TRACE_ID'],
  client_context: ['LAMBDA_RUNTIME_CLIENT_CONTEXT'],
  cognito_identity: ['LAMBDA_RUNTIME_COGNITO_IDENTITY'],
  tenant_id: ['LAMBDA_RUNTIME_AWS_TENANT_ID'],
};

const INVOCATIONS_FD = 3;
const RESULTS_FD = 4;

function badInput(what) {
  process.stderr.write(`runner: ${what}\n`);
  process.exit(1);
}

// Retries a synchronous read or write that found the descriptor non-blocking.
function retryOnEagain(io) {
  for (;;) {
    try {
      return io();
    } catch (err) {
      if (err.code !== 'EAGAIN') throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1); // sleep 1 ms
    }
  }
}

// Blocking reads of the invocations descriptor, in big chunks.
class FrameReader {
  constructor(fd) {
    this.fd = fd;
    this.pending = Buffer.alloc(0); // read, not yet consumed
  }

  readInto(buf, offset) {
    return retryOnEagain(() => fs.readSync(this.fd, buf, offset, buf.length - offset, null));
  }

  // The next header line without its newline; null at end of file.
  line() {
    let end;
    while ((end = this.pending.indexOf(10)) < 0) {
      if (this.pending.length > 64) badInput('a frame header line over 64 bytes');
      const chunk = Buffer.allocUnsafe(64 * 1024);
      const n = this.readInto(chunk, 0);
      if (n === 0) {
        if (this.pending.length > 0) badInput('end of file inside a frame header');
        return null;
      }
      this.pending = Buffer.concat([this.pending, chunk.subarray(0, n)]);
    }
    const line = this.pending.toString('latin1', 0, end);
    this.pending = this.pending.subarray(end + 1);
    return line;
  }

  exactly(size) {
    const data = Buffer.allocUnsafe(size);
    let have = this.pending.copy(data, 0, 0, size);
    this.pending = this.pending.subarray(have);
    while (have < size) {
      const n = this.readInto(data, have);
      if (n === 0) badInput(`end of file inside a frame (${have} of ${size} bytes)`);
      have += n;
    }
    return data;
  }
}

function writeAll(fd, bytes) {
  for (let done = 0; done < bytes.length; ) {
    done += retryOnEagain(() => fs.writeSync(fd, bytes, done));
  }
}

function sendFrame(verb, text) {
  const body = Buffer.from(text, 'utf8');
  writeAll(RESULTS_FD, Buffer.from(`${verb} ${body.length}\n`));
  writeAll(RESULTS_FD, body);
}

function setInvocationEnv(contextBytes) {
  let context;
  try {
    context = JSON.parse(contextBytes.toString('utf8'));
  } catch (err) {
    badInput(`the invocation context is not JSON: ${err.message}`);
  }
  for (const [key, names] of Object.entries(CONTEXT_ENV)) {
    const value = context[key];
    for (const name of names) {
      if (value === null || value === undefined) delete process.env[name];
      else process.env[name] = typeof value === 'string' ? value : JSON.stringify(value);
    }
  }
}

// What an error nobody handled does while a step (the load, or one event) of the
// framed protocol runs: it fails that step.
let abortStep = null;

function step(promise) {
  return new Promise((resolve, reject) => {
    abortStep = reject;
    promise.then(resolve, reject);
  });
}

// Lets the event loop run once, so that a rejection the handler left unhandled is
// reported while its event is still the one running.
function settle() {
  return new Promise((resolve) => setImmediate(resolve));
}

async function framed() {
  const [file, method] = args();
  delete process.env.BOOTSTRAP_FRAMED; // not for the handler's own subprocesses
  // There is no API to mark fds 3 and 4 close-on-exec, but Node does it itself at start-up
  // for its low inherited descriptors (seen with Node 20 in /proc/self/fdinfo), so the
  // handler's subprocesses do not get them.

  let handler;
  try {
    handler = await step(loadHandler(file, method));
  } catch (err) {
    sendFrame('error', diagnostic(err));
    process.exit(ERROR_EXIT);
  }
  abortStep = null;
  writeAll(RESULTS_FD, Buffer.from('ready\n'));

  const reader = new FrameReader(INVOCATIONS_FD);
  for (;;) {
    const header = reader.line();
    if (header === null) process.exit(0); // bootstrap retires this worker
    const sizes = /^invoke (\d+) (\d+)$/.exec(header);
    if (!sizes) badInput(`malformed frame header ${JSON.stringify(header)}`);
    const context = reader.exactly(Number(sizes[1]));
    const event = reader.exactly(Number(sizes[2]));
    setInvocationEnv(context);

    let verb, body;
    try {
      body = await step(runEvent(handler, event).finally(settle));
      verb = 'ok';
    } catch (err) {
      verb = 'error';
      body = diagnostic(err);
    }
    abortStep = null;
    sendFrame(verb, body);
  }
}

// An error nobody handled: it fails the running framed step, or the plain event.
// One that comes outside a step (after its event's answer was sent) is only logged.
function unhandled(err) {
  if (abortStep) abortStep(err);
  else if (FRAMED) diagnostic(err);
  else fail(err);
}

process.on('uncaughtException', unhandled);
process.on('unhandledRejection', unhandled);
if (FRAMED) {
  framed().catch((err) => {
    process.stderr.write(`runner: ${(err && err.stack) || err}\n`);
    process.exit(1);
  });
} else {
  plain().catch(fail);
}
