// Node.js runner for the `bootstrap` Lambda custom runtime (CommonJS, Node 18+).
//
// Usage: node runner.js FILE METHOD   (cwd = LAMBDA_TASK_ROOT)
// Runs a handler written for AWS's managed Node runtime unchanged, with the behaviour of
// AWS's runtime interface client (aws-lambda-nodejs-runtime-interface-client): the handler
// is found from _HANDLER as AWS reads it (FILE and METHOD only when _HANDLER is unset), with
// AWS's module precedence and errors; the event is JSON-decoded and the handler called as
// (event, context, callback); callback, promise, context.succeed/fail/done and
// callbackWaitsForEmptyEventLoop settle it as on AWS; awslambda.streamifyResponse and
// awslambda.HttpResponseStream stream the answer; console.* writes AWS's log records; an
// error is the document AWS posts, {errorType, errorMessage, trace}. Two protocols:
//
// Plain (one process per event): the event is stdin. console.* and process.stdout.write go
// to the log (stderr); the response goes to the original stdout, then exit 0; a failure
// goes there too, then exit 70. A streamed answer is written there whole at its end.
//
// Framed (BOOTSTRAP_FRAMED=1; one warm process for many events): the handler is loaded
// once, then the runner serves the invocations bootstrap sends as frames on fds 3 and 4, as
// layers/PROTOCOL.md describes (a streaming handler's answer as stream and chunk frames).
// stdout and stderr are both the log.
//
// Between events the runner blocks on fd 3, where AWS's process is frozen: what a handler
// left running (timers, sockets) resumes with the next event. "The event loop is empty",
// which AWS waits for before it answers a callback (callbackWaitsForEmptyEventLoop) and
// which ends a handler that never settles, is Node's own 'beforeExit', as on AWS: the runner
// holds no handle of its own while a handler runs. An error nobody handled fails the event
// that is running, as on AWS; AWS then exits and Lambda starts afresh, while this runner
// goes on serving, since bootstrap would charge a worker's death to the next event.
'use strict';

const fs = require('fs');
const path = require('path');
const util = require('util');
const Module = require('module');
const { Writable } = require('stream');
const { pathToFileURL } = require('url');

const ERROR_EXIT = 70;
const FRAMED = process.env.BOOTSTRAP_FRAMED === '1';
const TASK_ROOT = process.env.LAMBDA_TASK_ROOT || process.cwd();

// A per-function convention is for bootstrap's runners; this one has only AWS's.
delete process.env.BOOTSTRAP_CONVENTION;

// AWS's Node runtime sets NODE_PATH, unless the function did, to the layer directories, the
// runtime's own and the task root, so that require('x') finds modules a layer put in
// /opt/nodejs/node_modules. Node reads NODE_PATH once at start-up: _initPaths reads it again.
if (!process.env.NODE_PATH) {
  const major = process.versions.node.split('.')[0];
  process.env.NODE_PATH = [
    `/opt/nodejs/node${major}/node_modules`,
    '/opt/nodejs/node_modules',
    '/var/runtime/node_modules',
    '/var/runtime',
    TASK_ROOT,
  ].join(':');
  Module._initPaths();
}

// Plain protocol: keep the real stdout for the response; everything else written to
// stdout is log.
const writeResponse = process.stdout.write.bind(process.stdout);
if (!FRAMED) process.stdout.write = process.stderr.write.bind(process.stderr);

// --- Errors, named and posted as AWS's runtime does -----------------------------------

class ImportModuleError extends Error {}
class HandlerNotFound extends Error {}
class MalformedHandlerName extends Error {}
class UserCodeSyntaxError extends Error {}
class MalformedStreamingHandler extends Error {}
class InvalidStreamingOperation extends Error {}
class NodeJsExit extends Error {
  constructor() {
    super(
      'The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly caused by a Promise that was never settled. For more information, see https://nodejs.org/docs/latest/api/process.html#exit-codes',
    );
  }
}
class UnhandledPromiseRejection extends Error {
  constructor(reason, promise) {
    super(reason);
    this.reason = reason;
    this.promise = promise;
  }
}
// The class name is what JSON log records show; the name, with its prefix, is the errorType.
for (const type of [
  ImportModuleError,
  HandlerNotFound,
  MalformedHandlerName,
  UserCodeSyntaxError,
  MalformedStreamingHandler,
  InvalidStreamingOperation,
  NodeJsExit,
  UnhandledPromiseRejection,
]) {
  type.prototype.name = `Runtime.${type.name}`;
}

// An object with a string name, message and stack passes for an error, as on AWS.
function looksLikeError(value) {
  return Boolean(
    value &&
      typeof value.name === 'string' &&
      typeof value.message === 'string' &&
      typeof value.stack === 'string' &&
      value.name &&
      value.message &&
      value.stack,
  );
}

// The document AWS posts for anything thrown: the stack whole, one line per entry. DEL is
// escaped because the type also becomes an HTTP header. Bootstrap needs errorType and
// errorMessage to be strings, which AWS does not check.
function errorDocument(err) {
  const escape = (text) => String(text).replaceAll('\x7F', '%7F');
  try {
    if (util.types.isNativeError(err) || looksLikeError(err)) {
      return {
        errorType: escape(err.name),
        errorMessage: escape(err.message),
        trace: err.stack.replaceAll('\x7F', '%7F').split('\n'),
      };
    }
    return { errorType: typeof err, errorMessage: escape(err.toString()), trace: [] };
  } catch {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
    };
  }
}

function intoError(err) {
  return err instanceof Error ? err : new Error(err);
}

// --- Logging in AWS's format ----------------------------------------------------------

// The global slots AWS's runtime keeps the current ids in; tools read them too.
const REQUEST_ID = Symbol.for('aws.lambda.runtime.requestId');
const TENANT_ID = Symbol.for('aws.lambda.runtime.tenantId');

const LEVELS = new Map(
  ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'].map((name, i) => [name, { name, rank: i + 1 }]),
);
const JSON_LOGS = (process.env.AWS_LAMBDA_LOG_FORMAT || '').toUpperCase() === 'JSON';

// Fields AWS gives an Error inside a JSON record: type, message, stack lines, own keys.
function jsonErrorFields(_key, value) {
  if (!(value instanceof Error)) return value;
  return Object.assign(
    {
      errorType: value?.constructor?.name ?? 'UnknownError',
      errorMessage: value.message,
      stackTrace: typeof value.stack === 'string' ? value.stack.split('\n') : value.stack,
    },
    value,
  );
}

// One JSON record. A lone argument is kept as a value (an object stays an object); several
// are formatted into one string, with the first Error among them described beside it.
function jsonRecord(level, args) {
  const record = { timestamp: new Date().toISOString(), level: level.name, requestId: global[REQUEST_ID] };
  const tenantId = global[TENANT_ID];
  if (tenantId !== undefined && tenantId !== null) record.tenantId = tenantId;
  if (args.length === 1) {
    record.message = args[0];
    try {
      return JSON.stringify(record, jsonErrorFields);
    } catch {
      record.message = util.format(record.message);
      return JSON.stringify(record);
    }
  }
  record.message = util.format(...args);
  const error = args.find((arg) => arg instanceof Error);
  if (error) {
    record.errorType = error?.constructor?.name ?? 'UnknownError';
    record.errorMessage = error.message;
    record.stackTrace = typeof error.stack === 'string' ? error.stack.split('\n') : [];
  }
  return JSON.stringify(record);
}

// A record is one line: Lambda splits the log on newlines, so the ones inside become \r.
function writeLog(level, args) {
  const line = JSON_LOGS
    ? jsonRecord(level, args)
    : `${new Date().toISOString()}\t${global[REQUEST_ID]}\t${level.name}\t${util.format(...args)}`;
  process.stdout.write(`${line.replace(/\n/g, '\r')}\n`);
}

// console.trace/debug/info/log/warn/error (and AWS's console.fatal) write records at their
// level; levels under AWS_LAMBDA_LOG_LEVEL (default TRACE: everything) cost a no-op call.
function patchConsole() {
  const threshold = LEVELS.get((process.env.AWS_LAMBDA_LOG_LEVEL || '').toUpperCase()) || LEVELS.get('TRACE');
  const logger = (name) => {
    const level = LEVELS.get(name);
    if (level.rank < threshold.rank) return () => {};
    return (message, ...params) => writeLog(level, [message, ...params]);
  };
  console.trace = logger('TRACE');
  console.debug = logger('DEBUG');
  console.info = logger('INFO');
  console.log = console.info;
  console.warn = logger('WARN');
  console.error = logger('ERROR');
  const fatal = LEVELS.get('FATAL');
  console.fatal = (message, ...params) => writeLog(fatal, [message, ...params]);
}

// An error as AWS's text records show it: a tab, then JSON with its hidden fields and its
// own keys, the stack as lines.
function formattedError(error) {
  const visible = (_key, value) => {
    if (!(value instanceof Error)) return value;
    const fields = Object.assign({ errorType: value.name, errorMessage: value.message, code: value.code }, value);
    if (typeof value.stack === 'string') fields.stack = value.stack.split('\n');
    return fields;
  };
  try {
    return `\t${JSON.stringify(error, visible)}`;
  } catch {
    return `\t${JSON.stringify(errorDocument(error))}`;
  }
}

// The record AWS writes for a failure ("Invoke Error", "Uncaught Exception", ...).
function logError(title, err) {
  if (JSON_LOGS) console.error(intoError(err));
  else console.error(title, formattedError(intoError(err)));
}

// --- Streaming: awslambda.streamifyResponse and the response stream ---------------------

const STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const HIGH_WATER_MARK = Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark');
const STREAM_RESPONSE = 'response';
const DEFAULT_CONTENT_TYPE = 'application/octet-stream';
const HTTP_INTEGRATION_CONTENT_TYPE = 'application/vnd.awslambda.http-integration-response';
const MAX_CHUNK = 1024 * 1024;

// Writes the HTTP integration prelude (the metadata as JSON, then 8 NUL bytes) before the
// body of a function URL's streamed response.
class HttpResponseStream {
  static from(stream, metadata) {
    stream.setContentType(HTTP_INTEGRATION_CONTENT_TYPE);
    const prelude = JSON.stringify(metadata);
    stream._onBeforeFirstWrite = (write) => {
      write(prelude);
      write(new Uint8Array(8));
    };
    return stream;
  }
}

function installAwsLambdaGlobal() {
  const off = process.env.AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA;
  if (off === '1' || off === 'true') return;
  globalThis.awslambda = {
    streamifyResponse(handler, options) {
      handler[STREAMING] = STREAM_RESPONSE;
      if (typeof options?.highWaterMark === 'number') handler[HIGH_WATER_MARK] = parseInt(options.highWaterMark);
      return handler;
    },
    HttpResponseStream,
  };
}

// The stream a streaming handler writes its answer to. Each write goes out at once (as
// chunk frames); the Content-Type may change until the first write; end() ends the answer.
// Unlike AWS's, end(chunk) writes the chunk the way write() does, so a prelude set by
// HttpResponseStream.from comes first (AWS's client skips it there: its issue #97).
class ResponseStream extends Writable {
  constructor(sink, highWaterMark) {
    super(highWaterMark === undefined ? {} : { highWaterMark });
    this._sink = sink;
    this._contentType = DEFAULT_CONTENT_TYPE;
    this._written = false;
    this._preluded = false;
    this._onBeforeFirstWrite = undefined;
  }

  setContentType(contentType) {
    if (this._written) throw new InvalidStreamingOperation('Cannot set content-type, too late.');
    require('http').validateHeaderValue('Content-Type', contentType);
    this._contentType = String(contentType);
  }

  write(chunk, encoding, callback) {
    if (typeof chunk !== 'string' && !Buffer.isBuffer(chunk) && chunk?.constructor !== Uint8Array) {
      chunk = JSON.stringify(chunk);
    }
    if (!this._written && !this._preluded && typeof this._onBeforeFirstWrite === 'function') {
      this._preluded = true;
      this._onBeforeFirstWrite((piece) => super.write(piece));
    }
    const more = super.write(chunk, encoding, callback);
    this._written = true;
    return more;
  }

  end(chunk, encoding, callback) {
    if (typeof chunk === 'function') return super.end(chunk);
    if (typeof encoding === 'function') [encoding, callback] = [undefined, encoding];
    if (chunk !== undefined && chunk !== null) this.write(chunk, encoding);
    return super.end(callback);
  }

  _write(chunk, _encoding, done) {
    try {
      this._sink.chunk(this._contentType, chunk);
    } catch (err) {
      return done(err);
    }
    done();
  }

  _final(done) {
    this._sink.end(this._contentType);
    done();
  }
}

// --- Loading the handler as AWS's runtime does ------------------------------------------

function handlerName() {
  if (process.env._HANDLER) return process.env._HANDLER;
  // No _HANDLER (an older bootstrap): rebuild it from FILE and METHOD.
  const [fileArg, method] = process.argv.slice(2);
  if (!fileArg || !method) {
    process.stderr.write('usage: runner.js FILE METHOD\n');
    process.exit(2);
  }
  const file = path.relative(TASK_ROOT, path.resolve(fileArg)).replace(/\.(js|mjs|cjs)$/, '');
  return `${file}.${method}`;
}

function requireIfExists(file) {
  return fs.existsSync(file) ? require(file) : undefined;
}

async function importIfExists(file) {
  return fs.existsSync(file) ? import(pathToFileURL(file).href) : undefined;
}

// Whether the nearest package.json above `dir` says "type": "module". A node_modules
// directory, or the root, ends the search with "no"; so does a package.json that cannot be
// read, with a warning.
function inModulePackage(dir) {
  for (;;) {
    if (dir.endsWith('/node_modules')) return false;
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest)) {
      try {
        const pkg = JSON.parse(fs.readFileSync(manifest));
        if (pkg) return pkg.type === 'module';
      } catch (err) {
        console.warn(`${manifest} cannot be read, it will be ignored for ES module detection purposes.`, err);
        return false;
      }
    }
    if (dir === '/') return false;
    dir = path.resolve(dir, '..');
  }
}

// AWS's order: the file without extension (CommonJS), then <name>.js (CommonJS, or an ES
// module in a "type": "module" package), <name>.mjs, <name>.cjs; then a module of that name
// where require would find one from the task root (node_modules, NODE_PATH).
async function loadModule(moduleRoot, name) {
  const base = path.resolve(TASK_ROOT, moduleRoot, name);
  const bare = requireIfExists(base);
  if (bare) return bare;
  const esm = fs.existsSync(`${base}.js`) && inModulePackage(path.dirname(`${base}.js`));
  if (!esm) {
    const js = requireIfExists(`${base}.js`);
    if (js) return js;
  }
  const loaded =
    (esm && (await importIfExists(`${base}.js`))) ||
    (await importIfExists(`${base}.mjs`)) ||
    requireIfExists(`${base}.cjs`);
  if (loaded) return loaded;
  return require(require.resolve(name, { paths: [TASK_ROOT, moduleRoot] }));
}

// The constructors of the four kinds of function: each makes code of the strings it gets.
const FUNCTION_CONSTRUCTORS = [
  function () {},
  async function () {},
  function* () {},
  async function* () {},
].map((fn) => Object.getPrototypeOf(fn).constructor);

// The built-in prototypes a property walk may not step into: through them a handler name
// could reach a function constructor (`x.constructor`, `x.constructor.constructor`).
const BUILT_IN_PROTOTYPES = new Set([Object.prototype, ...FUNCTION_CONSTRUCTORS.map((f) => f.prototype)]);

// Functions no handler name may resolve to, wherever a module exposes them: they would run
// the event as code.
const CODE_RUNNERS = new Set([...FUNCTION_CONSTRUCTORS, eval]);
{
  const vm = require('vm');
  for (const name of ['runInThisContext', 'runInNewContext', 'runInContext', 'compileFunction', 'Script']) {
    CODE_RUNNERS.add(vm[name]);
  }
}

// `a.b.c` looked up on the module's exports, one property at a time, never evaluated. A
// property is taken from the object or from a prototype of the user's, not from a built-in
// one, and never is a function that makes code (AWS's client walks anything).
function walk(exports, propertyPath) {
  let value = exports;
  for (const key of propertyPath.split('.')) {
    if (value === null || value === undefined || value === false || value === 0 || value === '') return value;
    let owner = value;
    while (owner !== null && !Object.prototype.hasOwnProperty.call(owner, key)) owner = Object.getPrototypeOf(owner);
    if (owner === null || BUILT_IN_PROTOTYPES.has(owner)) return undefined;
    value = value[key];
    if (CODE_RUNNERS.has(value)) return undefined;
  }
  return value;
}

// The handler function _HANDLER names, or AWS's error for why there is none.
async function loadHandler(fullName) {
  if (fullName.includes('..')) {
    throw new MalformedHandlerName(
      `'${fullName}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  // The directory part, then the module up to the first dot and the property path after it.
  const base = path.basename(fullName);
  const moduleRoot = fullName.substring(0, fullName.indexOf(base));
  const parts = /^([^.]*)\.(.*)$/.exec(base);
  if (!parts) throw new MalformedHandlerName('Bad handler');
  const [, moduleName, propertyPath] = parts;

  installAwsLambdaGlobal();
  let exports;
  try {
    exports = await loadModule(moduleRoot, moduleName);
  } catch (err) {
    if (err instanceof SyntaxError) throw new UserCodeSyntaxError(err);
    if (err.code !== undefined && err.code === 'MODULE_NOT_FOUND') throw new ImportModuleError(err);
    throw err;
  }
  const handler = walk(exports, propertyPath);
  if (!handler) throw new HandlerNotFound(`${fullName} is undefined or not exported`);
  if (typeof handler !== 'function') throw new HandlerNotFound(`${fullName} is not a function`);
  return new Runtime(handler, describeHandler(handler));
}

// The loaded handler and what is known of it. AWS's client calls the handler as a method of
// its Runtime object, so a handler's stack frames read "at Runtime.handler (...)" (or "[as
// handler]"): calling it the same way keeps its traces the same.
class Runtime {
  constructor(handler, { streaming, highWaterMark, isAsync }) {
    this.handler = handler;
    this.streaming = streaming;
    this.highWaterMark = highWaterMark;
    this.isAsync = isAsync;
  }
}

function describeHandler(handler) {
  const mode = handler[STREAMING];
  if (mode !== undefined && mode !== null && mode !== false && mode !== STREAM_RESPONSE) {
    throw new MalformedStreamingHandler('Only response streaming is supported.');
  }
  const mark = handler[HIGH_WATER_MARK];
  const highWaterMark = mark === undefined || mark === null || mark === false ? NaN : parseInt(mark);
  let isAsync = false;
  try {
    isAsync = handler.constructor?.name === 'AsyncFunction';
  } catch {
    // A handler whose constructor cannot be read is not async.
  }
  return {
    streaming: mode === STREAM_RESPONSE,
    highWaterMark: Number.isNaN(highWaterMark) ? undefined : highWaterMark,
    isAsync,
  };
}

function warnOfCallbackHandler(loaded) {
  if (process.env.AWS_LAMBDA_NODEJS_DISABLE_CALLBACK_WARNING !== undefined) return;
  if (loaded.handler.length === 3 && !loaded.isAsync && !loaded.streaming) {
    console.warn(
      'AWS Lambda plans to remove support for callback-based function handlers starting with Node.js 24. You will need to update this function to use an async handler to use Node.js 24 or later. For more information and to provide feedback on this change, see https://github.com/aws/aws-lambda-nodejs-runtime-interface-client/issues/137. To disable this warning, set the AWS_LAMBDA_NODEJS_DISABLE_CALLBACK_WARNING environment variable.',
    );
  }
}

// --- Invocations ----------------------------------------------------------------------

// What runs when the event loop has nothing left to do ('beforeExit'): set by the running
// invocation, as AWS's runtime sets its one listener.
let onLoopEmpty = () => {};
// The invocation that errors nobody handled are charged to; null during the load.
let current = null;

process.on('beforeExit', () => {
  onLoopEmpty();
  // Framed: never let the process end between events, whatever the handler left behind.
  if (FRAMED && current && current.answered && !current.nextScheduled) current.next();
});

function parseContextJson(text, name) {
  if (text === undefined || text === null) return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`Cannot parse ${name} as json: ${err.toString()}`);
  }
}

// The context fields AWS adds to the callback context, in AWS's order.
function contextFields(ctx) {
  const deadline = ctx.deadline_ms;
  const env = process.env;
  return [
    {
      functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
      functionName: env.AWS_LAMBDA_FUNCTION_NAME,
      memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
      logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
      logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    },
    {
      clientContext: parseContextJson(ctx.client_context, 'ClientContext'),
      identity: parseContextJson(ctx.cognito_identity, 'CognitoIdentity'),
      invokedFunctionArn: ctx.invoked_function_arn ?? undefined,
      awsRequestId: ctx.aws_request_id ?? undefined,
      tenantId: ctx.tenant_id ?? undefined,
      getRemainingTimeInMillis: () => deadline - Date.now(),
    },
  ];
}

function isPromise(value) {
  return Boolean(value && value.then && typeof value.then === 'function');
}

// The answer to one event, whatever path it takes: at most one is ever sent.
class Invocation {
  constructor(transport) {
    this.transport = transport;
    this.answered = false;
    this.nextScheduled = false;
    // How an error nobody handled fails it; each programming model sets its own.
    this.failure = (err) => this.error(err);
  }

  ok(body) {
    if (this.answered) return;
    this.answered = true;
    this.transport.ok(body);
  }

  error(err) {
    if (this.answered) return;
    this.answered = true;
    this.transport.error(JSON.stringify(errorDocument(err)));
  }

  // Ready for the next event (framed); in plain mode the answer ends the process.
  next() {
    if (this.nextScheduled) return;
    this.nextScheduled = true;
    this.transport.next();
  }

  setLoopEmpty(listener) {
    if (current === this) onLoopEmpty = listener;
  }

  // An error nobody handled, while this invocation is the current one.
  unhandled(err) {
    this.failure(err);
    this.next();
  }
}

function serializeResponse(result) {
  try {
    return JSON.stringify(result === undefined ? null : result);
  } catch {
    throw new Error('Unable to stringify response body');
  }
}

// AWS's programming model for a handler that answers with its result: a promise, the
// callback, context.succeed/fail/done, or nothing (null once the event loop is empty).
function runBuffered(loaded, eventBytes, ctx, inv) {
  let waitForEmptyEventLoop = true;
  let completeCalled = false;
  // Only the first of callback/succeed/fail/done counts; one that throws lets the next try.
  let settled = false;
  const once = (fn) =>
    function (...args) {
      if (settled) return;
      fn(...args);
      settled = true;
    };

  const postError = (err) => {
    logError('Invoke Error', err);
    inv.error(err);
    inv.next();
  };
  const complete = (result) => {
    if (completeCalled) {
      console.error('Invocation has already been reported as done. Cannot call complete more than once per invocation.');
      return;
    }
    completeCalled = true;
    inv.ok(serializeResponse(result));
    inv.next();
  };
  const done = (err, result) => {
    inv.setLoopEmpty(() => {});
    if (err !== undefined && err !== null) postError(err);
    else complete(result);
  };
  const callback = once((err, result) => {
    inv.setLoopEmpty(() => {});
    if (err !== undefined && err !== null) postError(err);
    else if (!waitForEmptyEventLoop) complete(result);
    else inv.setLoopEmpty(() => setImmediate(() => complete(result)));
  });
  const context = {
    get callbackWaitsForEmptyEventLoop() {
      return waitForEmptyEventLoop;
    },
    set callbackWaitsForEmptyEventLoop(value) {
      waitForEmptyEventLoop = value;
    },
    succeed: once((result) => done(null, result)),
    fail: once((err) => done(err === undefined || err === null ? 'handled' : err, null)),
    done: once(done),
  };

  inv.failure = (err) => {
    settled = true;
    inv.error(err);
  };
  // A handler that never answered: null for a plain function, an error for an async one.
  inv.setLoopEmpty(() => {
    if (inv.answered) return inv.next();
    completeCalled = true;
    settled = true;
    if (loaded.isAsync) {
      const error = new NodeJsExit();
      logError('Invoke Error', error);
      inv.error(error);
    } else {
      inv.ok('null');
    }
    inv.next();
  });

  try {
    const event = JSON.parse(eventBytes.toString('utf8'));
    Object.assign(context, ...contextFields(ctx));
    const result = loaded.handler(event, context, callback);
    if (isPromise(result)) result.then(context.succeed, context.fail).catch(context.fail);
  } catch (err) {
    callback(err);
  }
}

// AWS's programming model for awslambda.streamifyResponse(handler): (event, responseStream,
// context), an async handler, the answer ended by responseStream.end().
async function runStreaming(loaded, eventBytes, ctx, inv) {
  let waitForEmptyEventLoop = true;
  let handlerSettled = false;
  const sink = inv.transport.stream();
  const stream = new ResponseStream(sink, loaded.highWaterMark);
  let streamError = null;
  const ended = new Promise((resolve, reject) => {
    stream.on('finish', resolve);
    stream.on('error', (err) => {
      streamError = err;
      reject(err);
    });
  });
  ended.catch(() => {}); // seen through `streamError` or the await below

  const fail = (err) => {
    logError('Invoke Error', err);
    if (!inv.answered) {
      inv.answered = true;
      sink.error(stream._contentType, JSON.stringify(errorDocument(err)));
    }
  };
  const scheduleNext = () => {
    inv.setLoopEmpty(() => {});
    if (!waitForEmptyEventLoop) inv.next();
    else inv.setLoopEmpty(() => setImmediate(() => inv.next()));
  };
  // An error nobody handled is posted as AWS posts it, as the invocation's error: a plain
  // error post while the stream has not opened, else the stream's error trailers.
  inv.failure = (err) => {
    if (inv.answered) return;
    inv.answered = true;
    sink.error(stream._contentType, JSON.stringify(errorDocument(err)), false);
  };
  sink.onEnd = () => {
    inv.answered = true;
  };
  // The loop emptied with the answer still open: nothing is left that could end it.
  inv.setLoopEmpty(() => {
    if (!inv.answered) fail(handlerSettled ? 'Response stream is not finished.' : new NodeJsExit());
    inv.next();
  });

  const context = {
    get callbackWaitsForEmptyEventLoop() {
      return waitForEmptyEventLoop;
    },
    set callbackWaitsForEmptyEventLoop(value) {
      waitForEmptyEventLoop = value;
    },
  };
  try {
    Object.assign(context, ...contextFields(ctx));
    const event = JSON.parse(eventBytes.toString('utf8'));
    const returned = loaded.handler(event, stream, context);
    if (!isPromise(returned)) {
      handlerSettled = true;
      fail('Streaming does not support non-async handlers.');
      scheduleNext();
      return;
    }
    let result;
    try {
      result = await returned;
    } finally {
      handlerSettled = true;
    }
    if (result !== undefined) console.warn('Streaming handlers ignore return values.');
    if (streamError) throw streamError;
    await ended;
    scheduleNext();
  } catch (err) {
    fail(err);
    scheduleNext();
  }
}

function runInvocation(loaded, eventBytes, ctx, transport) {
  global[REQUEST_ID] = ctx.aws_request_id ?? undefined;
  global[TENANT_ID] = ctx.tenant_id ?? undefined;
  const inv = new Invocation(transport);
  current = inv;
  onLoopEmpty = () => {};
  if (loaded.streaming) runStreaming(loaded, eventBytes, ctx, inv);
  else runBuffered(loaded, eventBytes, ctx, inv);
}

// --- Errors nobody handled --------------------------------------------------------------

// During the load they fail it (`loadFailed`); during an event, that event, as on AWS.
let loadFailed = null;

function unhandled(err) {
  if (current) {
    if (!current.answered) current.unhandled(err);
  } else if (loadFailed) {
    loadFailed(err);
  }
}

process.on('uncaughtException', (err) => {
  logError('Uncaught Exception', err);
  unhandled(err);
});
process.on('unhandledRejection', (reason, promise) => {
  const err = new UnhandledPromiseRejection(reason, promise);
  logError('Unhandled Promise Rejection', err);
  unhandled(err);
});

// An error nobody handled while the module loaded: logged already where it was caught.
class LoggedFailure {
  constructor(err) {
    this.err = err;
  }
}

// Loads the handler; AWS logs a failure as an uncaught exception, since it ends the init.
async function load() {
  const failed = new Promise((_, reject) => {
    loadFailed = (err) => reject(new LoggedFailure(err));
  });
  try {
    const loaded = await Promise.race([loadHandler(handlerName()), failed]);
    warnOfCallbackHandler(loaded);
    return loaded;
  } catch (err) {
    if (err instanceof LoggedFailure) throw err.err;
    logError('Uncaught Exception', err);
    throw err;
  } finally {
    loadFailed = null;
  }
}

// --- The plain protocol -----------------------------------------------------------------

let finished = false;

function respond(body, code) {
  if (finished) return;
  finished = true;
  writeResponse(body, () => process.exit(code));
}

// Context values from the LAMBDA_RUNTIME_* variables bootstrap sets for the event.
function contextFromEnv() {
  const env = process.env;
  return {
    aws_request_id: env.LAMBDA_RUNTIME_AWS_REQUEST_ID,
    deadline_ms: /^\d+$/.test(env.LAMBDA_RUNTIME_DEADLINE_MS || '') ? Number(env.LAMBDA_RUNTIME_DEADLINE_MS) : undefined,
    invoked_function_arn: env.LAMBDA_RUNTIME_INVOKED_FUNCTION_ARN,
    client_context: env.LAMBDA_RUNTIME_CLIENT_CONTEXT,
    cognito_identity: env.LAMBDA_RUNTIME_COGNITO_IDENTITY,
    tenant_id: env.LAMBDA_RUNTIME_AWS_TENANT_ID,
  };
}

// Plain mode has no stream to Lambda: a streamed answer is kept (up to Lambda's response
// limit, past which bootstrap refuses it anyway) and written when it ends.
const PLAIN_STREAM_LIMIT = 6 * 1024 * 1024 + 100;

const plainTransport = {
  ok: (body) => respond(body, 0),
  error: (doc) => respond(doc, ERROR_EXIT),
  next: () => {},
  stream() {
    const kept = [];
    let size = 0;
    let passing = false;
    return {
      chunk(_contentType, bytes) {
        if (passing) return writeResponse(bytes);
        kept.push(Buffer.from(bytes));
        size += bytes.length;
        if (size > PLAIN_STREAM_LIMIT) {
          passing = true;
          writeResponse(Buffer.concat(kept.splice(0)));
        }
      },
      end() {
        this.onEnd();
        respond(passing ? Buffer.alloc(0) : Buffer.concat(kept), 0);
      },
      error(_contentType, doc) {
        respond(passing ? Buffer.alloc(0) : doc, ERROR_EXIT);
      },
      onEnd() {},
    };
  },
};

async function plain() {
  const input = fs.readFileSync(0); // the whole event, as bytes
  patchConsole();
  let loaded;
  try {
    loaded = await load();
  } catch (err) {
    return respond(JSON.stringify(errorDocument(err)), ERROR_EXIT);
  }
  runInvocation(loaded, input, contextFromEnv(), plainTransport);
}

// --- The framed protocol (layers/PROTOCOL.md) -----------------------------------------

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

// A frame that fits a pipe's buffer leaves in one write, so that bootstrap's reader wakes once
// for it; a bigger one is not copied.
const ONE_WRITE_FRAME = 64 * 1024;

// A frame about invocation `id` (the one its invoke frame named; '0' for the load).
function sendFrame(verb, id, payload) {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const header = Buffer.from(`${verb} ${id} ${body.length}\n`);
  if (header.length + body.length <= ONE_WRITE_FRAME) {
    writeAll(RESULTS_FD, Buffer.concat([header, body]));
    return;
  }
  writeAll(RESULTS_FD, header);
  writeAll(RESULTS_FD, body);
}

// A streamed answer to invocation `id` on fd 4: opened by its first bytes or by its end, one
// chunk frame per write (split at the frame limit), then "ok" with no bytes, or the error.
function framedStream(id) {
  let opened = false;
  let closed = false;
  const open = (contentType) => {
    if (opened) return;
    opened = true;
    sendFrame('stream', id, contentType);
  };
  return {
    chunk(contentType, bytes) {
      if (closed) return;
      open(contentType);
      for (let at = 0; at < bytes.length; at += MAX_CHUNK) {
        sendFrame('chunk', id, bytes.subarray(at, at + MAX_CHUNK));
      }
    },
    end(contentType) {
      if (closed) return;
      open(contentType);
      closed = true;
      this.onEnd();
      sendFrame('ok', id, '');
    },
    // `opening`: false when an error should not open a stream that has not started.
    error(contentType, doc, opening = true) {
      if (closed) return;
      if (opening) open(contentType);
      closed = true;
      sendFrame('error', id, doc);
    },
    onEnd() {},
  };
}

// Sets each per-event variable the context frame names, or unsets it when null.
function setInvocationEnv(bytes) {
  let context;
  try {
    context = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    badInput(`the invocation context is not JSON: ${err.message}`);
  }
  if (context === null || typeof context !== 'object') badInput('the invocation context is not a JSON object');
  for (const [name, value] of Object.entries(context)) {
    if (value === null) delete process.env[name];
    else process.env[name] = String(value);
  }
}

async function framed() {
  delete process.env.BOOTSTRAP_FRAMED; // not for the handler's own subprocesses
  // There is no API to mark fds 3 and 4 close-on-exec, but Node does it itself at start-up
  // for its low inherited descriptors (seen with Node 20 in /proc/self/fdinfo), so the
  // handler's subprocesses do not get them.
  patchConsole();
  if (process.env.BOOTSTRAP_ISOLATION === 'fork') {
    // bootstrap refuses this for its node entry; this is for an entry of the user's own.
    const message = 'Node cannot fork a loaded runner (its event loop and threads do not survive a '
      + 'fork): remove isolation = "fork", and use the default (a fresh process per event, '
      + 'started ahead of it) or events_per_process = 0 (a warm worker)';
    const document = { errorType: 'Runtime.InvalidConfig', errorMessage: message, trace: [] };
    sendFrame('error', '0', JSON.stringify(document));
    process.exit(ERROR_EXIT);
  }

  let loaded;
  try {
    loaded = await load();
  } catch (err) {
    sendFrame('error', '0', JSON.stringify(errorDocument(err))); // invocation 0: the load
    process.exit(ERROR_EXIT);
  }
  writeAll(RESULTS_FD, Buffer.from('ready\n'));

  const reader = new FrameReader(INVOCATIONS_FD);
  // Every frame of an invocation's answer carries the id its invoke frame named.
  const transportFor = (id) => ({
    ok: (body) => sendFrame('ok', id, body),
    error: (doc) => sendFrame('error', id, doc),
    next: () => setImmediate(serveNext),
    stream: () => framedStream(id),
  });
  // Blocks until the next event, then starts it; its answer schedules the next call.
  function serveNext() {
    const header = reader.line();
    if (header === null) process.exit(0); // bootstrap retires this worker
    const fields = /^invoke (\d+) (\d+) (\d+)$/.exec(header);
    if (!fields) badInput(`malformed frame header ${JSON.stringify(header)}`);
    setInvocationEnv(reader.exactly(Number(fields[2])));
    const event = reader.exactly(Number(fields[3]));
    runInvocation(loaded, event, contextFromEnv(), transportFor(fields[1]));
  }
  setImmediate(serveNext);
}

if (FRAMED) {
  framed().catch((err) => {
    process.stderr.write(`runner: ${(err && err.stack) || err}\n`);
    process.exit(1);
  });
} else {
  plain().catch((err) => respond(JSON.stringify(errorDocument(err)), ERROR_EXIT));
}
