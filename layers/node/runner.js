// Node.js runner for the `bootstrap` Lambda custom runtime (CommonJS, Node 18+).
//
// Usage: node runner.js FILE METHOD   (one process per event, cwd = LAMBDA_TASK_ROOT)
// Loads FILE (require, or import() for ES modules), decodes the event (stdin) as
// JSON and calls exports[METHOD](event, context) as in AWS's managed Node runtime:
// sync, async/promise and callback (event, context, callback) handlers all work.
// console.log and process.stdout.write go to the log (stderr); the response goes to
// the original stdout as JSON.stringify(result), then exit 0. On failure the runner
// writes one JSON object {errorType, errorMessage, stackTrace} to the original
// stdout and exits 70. The process exits as soon as the response is written, so
// timers or sockets left open by the handler never keep it alive.
'use strict';

const fs = require('fs');
const path = require('path');

const ERROR_EXIT = 70;

// Keep the real stdout for the response; everything else written to stdout is log.
const writeResponse = process.stdout.write.bind(process.stdout);
process.stdout.write = process.stderr.write.bind(process.stderr);

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
  const error = describe(err);
  process.stderr.write(`ERROR [${error.errorType}] ${error.errorMessage.split('\n').join(' | ')}\n`);
  respond(JSON.stringify(error), ERROR_EXIT);
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
    callbackWaitsForEmptyEventLoop: false, // the process exits once the response is written
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

async function main() {
  const [fileArg, method] = process.argv.slice(2);
  if (!fileArg || !method) {
    process.stderr.write('usage: runner.js FILE METHOD\n');
    process.exit(2);
  }
  const file = path.resolve(fileArg);

  const input = fs.readFileSync(0); // the whole event, as bytes

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
  respond(body === undefined ? 'null' : body, 0);
}

process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);
main().catch(fail);
