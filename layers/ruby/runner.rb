# frozen_string_literal: true

# Ruby runner for the `bootstrap` Lambda custom runtime (Ruby 2.7+, standard library only).
#
# Usage: ruby runner.rb FILE METHOD   (cwd = LAMBDA_TASK_ROOT, _HANDLER = the handler name)
# Runs handlers written for AWS's managed Ruby runtime (aws_lambda_ric) unchanged, and
# behaves as it does: _HANDLER is `file.method` or `file.Module::Klass.method` (split at
# every dot, two or three parts); the file is required from the task root, which heads
# $LOAD_PATH (with Lambda's other library and gem directories, where they exist); the method is looked up for each event (a top-level method on one
# LambdaHandler object that lives as long as the process, or Kernel.const_get(class) and
# its singleton method) and called as method(event:, context:), the event decoded from
# JSON and `context` a LambdaContext. The result goes through AwsLambda::Marshaller (a
# handler file may redefine it, as on AWS): to_json, or the bytes of a StringIO/IO. Errors
# are {errorMessage, errorType, stackTrace} with errorType `Init<Class>` for a file that
# does not load and `Function<Class>` for anything the handler raises (NoMethodError for a
# missing method included); stackTrace holds up to 100 frames, cut where the runner's own
# frames begin. The log gets the lines aws_lambda_ric writes for an error, and Logger
# objects on $stdout or $stderr use its format, with the request id. Without _HANDLER,
# FILE and METHOD are used. An event that is not JSON ends the process with status 252 and
# no answer, as it ends aws_lambda_ric. Nothing from the handler name or the event is ever
# evaluated. Two protocols:
#
# Plain (one process per event): the event is stdin. $stdout, STDOUT and subprocesses
# write to the log (fd 1 becomes a copy of stderr); the response goes to the original
# stdout, then exit 0; a failure goes there too, then exit 70.
#
# Framed (BOOTSTRAP_FRAMED=1; one warm process for many events): FILE is loaded once, then the
# runner serves the invocations bootstrap sends as frames on fds 3 and 4, as layers/PROTOCOL.md
# describes. stdout and stderr are both the log. Ruby handlers do not stream (AWS's runtime
# does not either).
#
# Fork (BOOTSTRAP_FRAMED=1 and BOOTSTRAP_ISOLATION=fork): FILE is loaded once by a parent that
# never calls the handler; it forks a child for each `fork <n>` frame and reports it, and reaps
# child n when a `reap <n>` frame asks. The child takes $BOOTSTRAP_FORK_DIR/<n>.in and <n>.out as fds 3 and 4, becomes a process
# group leader, reseeds Random, says ready, serves one invoke frame as framed mode does and
# leaves with exit!, so that at_exit hooks and finalizers run in the parent only.

require 'json'
require 'logger'
require 'stringio'
require 'time'

# aws_lambda_ric has loaded these before it loads the handler, so handlers written for it
# may use them without a `require`. They are loaded when first named, not paid for upfront.
{
  Net: 'net/http',
  URI: 'uri',
  SecureRandom: 'securerandom',
  Timeout: 'timeout',
  Socket: 'socket',
  OpenSSL: 'openssl'
}.each { |name, library| Object.autoload(name, library) unless Object.const_defined?(name) }

unless Kernel.private_method_defined?(:URI) || Kernel.method_defined?(:URI)
  module Kernel
    # Kernel#URI comes with 'uri', which the autoload above loads for the constant only.
    # Loading it replaces this method with the real one.
    private def URI(*args)
      require 'uri'
      URI(*args)
    end
  end
end

# The `context` argument, with aws_lambda_ric's accessors. Built from the invocation's
# headers, as there.
class LambdaContext
  attr_reader :aws_request_id, :invoked_function_arn, :log_group_name, :log_stream_name,
              :function_name, :memory_limit_in_mb, :function_version, :identity, :tenant_id,
              :client_context, :deadline_ms

  def initialize(request)
    # The deadline is wall-clock time; measure what is left on the monotonic clock.
    @wall_minus_monotonic = Process.clock_gettime(Process::CLOCK_REALTIME, :millisecond) -
                            Process.clock_gettime(Process::CLOCK_MONOTONIC, :millisecond)
    @deadline_ms = request['Lambda-Runtime-Deadline-Ms'].to_i
    @aws_request_id = request['Lambda-Runtime-Aws-Request-Id']
    @invoked_function_arn = request['Lambda-Runtime-Invoked-Function-Arn']
    @log_group_name = ENV['AWS_LAMBDA_LOG_GROUP_NAME']
    @log_stream_name = ENV['AWS_LAMBDA_LOG_STREAM_NAME']
    @function_name = ENV['AWS_LAMBDA_FUNCTION_NAME']
    @memory_limit_in_mb = ENV['AWS_LAMBDA_FUNCTION_MEMORY_SIZE'] # a String, as on AWS
    @function_version = ENV['AWS_LAMBDA_FUNCTION_VERSION']
    identity = request['Lambda-Runtime-Cognito-Identity'].to_s
    @identity = JSON.parse(identity) unless identity.empty?
    tenant = request['Lambda-Runtime-Aws-Tenant-Id'].to_s
    @tenant_id = tenant unless tenant.empty?
    client_context = request['Lambda-Runtime-Client-Context'].to_s
    @client_context = JSON.parse(client_context) unless client_context.empty?
  end

  # Milliseconds left before the deadline; never negative (0 when there is no deadline).
  def get_remaining_time_in_millis
    now = Process.clock_gettime(Process::CLOCK_MONOTONIC, :millisecond) + @wall_minus_monotonic
    [@deadline_ms - now, 0].max
  end
end

module AwsLambda
  # How the event is decoded and the result encoded. Public on AWS, where a handler file may
  # reopen this class to replace either method, so both are called through it here too.
  class Marshaller
    class << self
      # `raw_request` answers `body` and `[header]`, like the Net::HTTP response it is on AWS.
      def marshall_request(raw_request)
        return raw_request.body unless raw_request['Content-Type'] == 'application/json'

        JSON.parse(raw_request.body)
      end

      # A String of JSON, or [io, 'application/unknown'] for a result to be sent as its bytes.
      def marshall_response(method_response)
        case method_response
        when StringIO, IO then [method_response, 'application/unknown']
        else method_response.to_json
        end
      end
    end
  end
end

# The object a top-level handler method is called on, as with aws_lambda_ric: `self` in the
# handler, whose instance variables last as long as the process.
class LambdaHandler
  attr_reader :handler_file_name, :handler_method_name

  def initialize(file_name, method_name)
    @handler_file_name = file_name
    @handler_method_name = method_name
  end
end

# Logger's format under aws_lambda_ric: the default one with the request id added. Text is
# read as UTF-8 (bytes that are not become U+FFFD), so that no message makes logging raise.
class LogFormatter < Logger::Formatter
  def call(severity, time, progname, msg)
    format('%<sev>s, [%<datetime>s #%<pid>d] %<severity>5s %<request_id>s -- %<progname>s: %<msg>s',
           sev: severity[0, 1], datetime: format_datetime(time), pid: Process.pid,
           severity: severity, request_id: BootstrapRunner.utf8($_global_aws_request_id),
           progname: BootstrapRunner.utf8(progname), msg: BootstrapRunner.utf8(msg2str(msg)))
  end
end

module BootstrapRunner
  ERROR_EXIT = 70
  # aws_lambda_ric exits with -4 when the runtime itself fails between events.
  RUNTIME_FAILURE_EXIT = 252
  # aws_lambda_ric keeps this many frames of a stack trace.
  MAX_FRAMES = 100
  # Bootstrap refuses error documents over 1 MiB; a message is cut well below that.
  MAX_MESSAGE_BYTES = 256 * 1024
  RUNNER = File.expand_path(__FILE__)

  # The invocation headers aws_lambda_ric reads, from the per-event environment.
  HEADER_ENV = {
    'lambda-runtime-aws-request-id' => 'LAMBDA_RUNTIME_AWS_REQUEST_ID',
    'lambda-runtime-deadline-ms' => 'LAMBDA_RUNTIME_DEADLINE_MS',
    'lambda-runtime-invoked-function-arn' => 'LAMBDA_RUNTIME_INVOKED_FUNCTION_ARN',
    'lambda-runtime-trace-id' => 'LAMBDA_RUNTIME_TRACE_ID',
    'lambda-runtime-client-context' => 'LAMBDA_RUNTIME_CLIENT_CONTEXT',
    'lambda-runtime-cognito-identity' => 'LAMBDA_RUNTIME_COGNITO_IDENTITY',
    'lambda-runtime-aws-tenant-id' => 'LAMBDA_RUNTIME_AWS_TENANT_ID'
  }.freeze

  # One invocation as the marshaller and LambdaContext see it: the body and the headers of
  # the /next answer. Lambda always sends the event as application/json.
  class Request
    attr_reader :body

    def initialize(body)
      @body = body
      @headers = HEADER_ENV.transform_values { |name| ENV[name] }
      @headers['content-type'] = 'application/json'
    end

    def [](name)
      @headers[name.to_s.downcase]
    end

    def key?(name)
      !self[name].nil?
    end

    def to_hash
      @headers.reject { |_, v| v.nil? }.transform_values { |v| [v] }
    end
  end

  # Where Logger writes in place of $stdout or $stderr: one log line per message, as
  # aws_lambda_ric writes one log record per message (a message's own line breaks become
  # carriage returns, since Lambda splits records at line feeds).
  class LogSink
    def write(message)
      STDOUT.write("#{message.to_s.chomp.gsub("\n", "\r")}\n") # one write: lines stay whole
    end

    def close; end

    def reopen(_log = nil)
      self
    end
  end
  LOG_SINK = LogSink.new

  # aws_lambda_ric sends Logger.new($stdout), Logger.new($stderr) and Logger.new(nil) to the
  # log, in its format unless the caller gives one.
  module LoggerToLog
    def initialize(logdev, *args, **options)
      if logdev.nil? || [$stdout, $stderr, STDOUT, STDERR].any? { |io| logdev.equal?(io) }
        logdev = LOG_SINK
        options[:formatter] ||= LogFormatter.new
      end
      super(logdev, *args, **options)
    end
  end
  Logger.prepend(LoggerToLog)

  # Something raised, with the classification aws_lambda_ric gives it (`Init`, `Function`,
  # `Runtime`).
  class Failure < StandardError
    attr_reader :error, :classification

    def initialize(error, classification)
      super(error.class.to_s)
      @error = error
      @classification = classification
    end

    def document
      { errorMessage: BootstrapRunner.message_of(@error),
        errorType: BootstrapRunner.utf8("#{@classification}<#{@error.class}>"),
        stackTrace: BootstrapRunner.frames_of(@error) }
    end
  end

  # What the handler will be called as: the class path (or nil) and the method name.
  Target = Struct.new(:klass, :method_name, :receiver)

  module_function

  def utf8(text)
    text = text.to_s.dup.force_encoding(Encoding::UTF_8)
    text.valid_encoding? ? text : text.scrub
  end

  def message_of(error)
    message = begin
      error.message.to_s
    rescue Exception # rubocop:disable Lint/RescueException -- a handler's own #message may fail
      error.class.to_s
    end
    message = message.byteslice(0, MAX_MESSAGE_BYTES) if message.bytesize > MAX_MESSAGE_BYTES
    utf8(message)
  end

  # The first frames of the error's stack, up to the first of the runner's own: what
  # aws_lambda_ric keeps, where its own frames are those under /var/runtime/lib.
  def frames_of(error)
    locations = error.backtrace_locations || []
    locations.first(MAX_FRAMES)
             .take_while { |l| (l.absolute_path || l.path) != RUNNER }
             .map { |l| utf8(l.to_s) }
  end

  # Writes what aws_lambda_ric logs for an error: a line saying what failed, then the error
  # document, pretty-printed, as one record.
  def log_error(what, document)
    STDOUT.write("#{what}\n#{JSON.pretty_generate(document).gsub("\n", "\r")}\n")
  end

  # The handler name aws_lambda_ric reads (_HANDLER), or one made of FILE and METHOD.
  def handler_name(file, method)
    @handler = ENV['_HANDLER'] || "#{File.basename(file, '.rb')}.#{method}"
  end

  # What Lambda's Ruby environment adds for a function's libraries (RUBYLIB and GEM_PATH, set
  # there before aws_lambda_ric starts): a layer's ruby/lib, and gems installed into the
  # function with `bundle config set path vendor/bundle` or into a layer's ruby/gems. Only
  # directories that exist are added, so a function without them costs two stat calls.
  def add_lambda_library_paths(root)
    lib = '/opt/ruby/lib'
    $LOAD_PATH.unshift(lib) if File.directory?(lib) && !$LOAD_PATH.include?(lib)
    return unless defined?(Gem)

    version = RbConfig::CONFIG['ruby_version']
    gems = ["#{root}/vendor/bundle/ruby/#{version}", "/opt/ruby/gems/#{version}"]
    gems = gems.select { |dir| File.directory?(dir) }
    return if gems.empty?

    # Ahead of the interpreter's own paths, which an explicit GEM_PATH would otherwise drop.
    ENV['GEM_PATH'] = (gems + Gem.path).uniq.join(File::PATH_SEPARATOR)
    Gem.paths = ENV
  end

  # Requires the handler file and returns the Target to call; raises Failure(Init).
  def load_handler(file, method)
    name = handler_name(file, method)
    parts = name.split('.')
    unless [2, 3].include?(parts.size)
      raise ArgumentError, "Invalid handler #{parts}, must be of form FILENAME.METHOD or " \
                           'FILENAME.CLASS.METHOD where FILENAME corresponds with an existing Ruby ' \
                           'source file FILENAME.rb, CLASS is an optional module/class namespace ' \
                           'and METHOD is a callable method. If using CLASS, METHOD must be a ' \
                           'class-level method.'
    end
    file_name = parts.first
    root = Dir.pwd
    add_lambda_library_paths(root)
    $LOAD_PATH.unshift(root) unless $LOAD_PATH.include?(root)
    # The file AWS's `require file_name` finds first, $LOAD_PATH starting with the task root.
    # Never searched for along $LOAD_PATH: a name is not a library to load.
    path = ENV['_HANDLER'] ? File.expand_path("#{file_name}.rb", root) : File.expand_path(file)
    raise LoadError, "cannot load such file -- #{file_name}" unless File.file?(path)

    require path
    Target.new(parts.size == 3 ? parts[1] : nil, parts.last, LambdaHandler.new(file_name, parts.last))
  rescue SignalException
    raise
  rescue Exception => e # rubocop:disable Lint/RescueException -- SyntaxError, LoadError, exit...
    raise Failure.new(e, 'Init')
  end

  # Runs one event: returns [:ok, bytes] or [:error, document]. A failure to build the event
  # or the context ends the process, as it ends aws_lambda_ric.
  def invoke(target, event_bytes)
    request = Request.new(event_bytes)
    $_global_aws_request_id = request['Lambda-Runtime-Aws-Request-Id']
    begin
      event = AwsLambda::Marshaller.marshall_request(request)
      context = LambdaContext.new(request)
    rescue SignalException
      raise
    rescue Exception => e # rubocop:disable Lint/RescueException
      runtime_failure(e)
    end
    call_handler(target, event, context)
  end

  def call_handler(target, event, context)
    begin
      receiver = target.klass ? Kernel.const_get(target.klass) : target.receiver
      result = receiver.__send__(target.method_name, event: event, context: context)
      marshalled = AwsLambda::Marshaller.marshall_response(result)
    rescue SignalException
      raise
    rescue NameError => e # NoMethodError too: the method or class is missing, or misused
      return handler_failed('Critical exception from handler', e)
    rescue StandardError => e
      return handler_failed('Error raised from handler method', e)
    rescue Exception => e # rubocop:disable Lint/RescueException -- exit, stack overflow...
      return handler_failed('Critical exception from handler', e)
    end
    body, content_type = marshalled # a String alone, or [io, content type]
    begin
      body = body.read if content_type == 'application/unknown'
    rescue StandardError => e
      return [:error, Failure.new(e, 'Runtime').document]
    end
    [:ok, body.to_s.b]
  end

  def handler_failed(what, error)
    document = Failure.new(error, 'Function').document
    log_error(what, document)
    [:error, document]
  end

  def init_failed(failure)
    document = failure.document
    log_error("Init error when loading handler #{@handler}", document)
    document
  end

  # Logs the error and exits without an answer for the event, as aws_lambda_ric does when it
  # cannot decode an event: it reports an init error, which Lambda refuses after init.
  def runtime_failure(error)
    init_failed(Failure.new(error, 'Init'))
    exit(RUNTIME_FAILURE_EXIT)
  end

  # The plain protocol: one event on stdin, one response on stdout.
  def plain(file, method)
    STDIN.binmode
    event_bytes = STDIN.read
    # Keep the original stdout for the response; from here on fd 1 is the log, for $stdout
    # and STDOUT and for subprocesses alike.
    response = STDOUT.dup # close-on-exec, as every descriptor Ruby opens
    response.binmode
    STDOUT.reopen(STDERR)
    STDOUT.sync = true

    status = 0
    body = begin
      kind, bytes = invoke(load_handler(file, method), event_bytes)
      status = ERROR_EXIT if kind == :error
      kind == :ok ? bytes : JSON.generate(bytes)
    rescue Failure => f
      status = ERROR_EXIT
      JSON.generate(init_failed(f))
    end
    response.write(body)
    response.close
    exit(status)
  end

  # The framed protocol: load once, then serve invocations from fd 3 until its end (or, in fork
  # mode, fork a child for each).
  def framed(file, method)
    ENV.delete('BOOTSTRAP_FRAMED') # not for the handler's own subprocesses
    fork = ENV.delete('BOOTSTRAP_ISOLATION') == 'fork'
    fork_dir = ENV.delete('BOOTSTRAP_FORK_DIR')
    abort 'runner: BOOTSTRAP_ISOLATION=fork without BOOTSTRAP_FORK_DIR' if fork && fork_dir.to_s.empty?
    invocations = IO.for_fd(3, 'rb', autoclose: true)
    results = IO.for_fd(4, 'wb', autoclose: true)
    [invocations, results].each { |io| io.close_on_exec = true }
    results.sync = true
    STDOUT.sync = true # fd 1 is the log in this mode

    target = begin
      load_handler(file, method)
    rescue Failure => f
      send_frame(results, 'error', '0', JSON.generate(init_failed(f))) # invocation 0: the load
      exit(ERROR_EXIT)
    end
    results.write("ready\n")
    fork_parent(invocations, results, target, fork_dir) if fork # never returns

    while (header = invocations.gets("\n", 64))
      serve(invocations, results, target, header)
    end
    exit(0) # end of file: bootstrap retires this worker
  end

  # Answers the invoke frame whose header line is `header`.
  def serve(invocations, results, target, header)
    fields = header.chomp("\n").split(' ', -1)
    unless header.end_with?("\n") && fields.size == 4 && fields[0] == 'invoke' &&
           fields[1..].all? { |field| field.match?(/\A\d+\z/) }
      abort "runner: malformed frame header #{header.inspect}"
    end
    id = fields[1]
    context_bytes = read_exactly(invocations, fields[2].to_i)
    event_bytes = read_exactly(invocations, fields[3].to_i)
    set_invocation_env(context_bytes)
    kind, body = invoke(target, event_bytes)
    send_frame(results, kind.to_s, id, kind == :ok ? body : JSON.generate(body))
  end

  # Fork mode's parent: a child for each `fork <n>` frame, not waited for (bootstrap asks for the
  # next event's child while the current one runs), and each child reaped when `reap <n>` asks.
  # SIGCHLD stays at its default (a handler file that ignores it would have a child reaped
  # before Process.wait2 sees it); the child gets the file's setting back.
  def fork_parent(invocations, results, target, dir)
    require 'io/nonblock' # for the children's pipes
    file_chld = trap('CHLD', 'SYSTEM_DEFAULT')
    children = {}
    while (header = invocations.gets("\n", 64))
      verb, n = header.match(/\A(fork|reap) ([1-9]\d*)\n\z/)&.captures
      abort "runner: malformed frame header #{header.inspect}" unless verb
      if verb == 'reap'
        pid = children.delete(n) or abort "runner: reap of child #{n}, which is not one of ours"
        _, status = Process.wait2(pid)
        results.write(status.signaled? ? "signal #{n} #{status.termsig}\n" : "exit #{n} #{status.exitstatus}\n")
        next
      end
      pid = Process.fork
      fork_child(invocations, results, target, "#{dir}/#{n}", file_chld) unless pid # never returns
      set_child_group(pid)
      children[n] = pid
      results.write("child #{n} #{pid}\n")
    end
    exit(0) # end of file: bootstrap retires this worker
  rescue Errno::EPIPE
    exit!(1) # bootstrap is gone
  end

  # Points fd 3 or 4 (`io`'s) at the named pipe `path`, opened without waiting (bootstrap holds
  # its end; if it is gone, opening `.out` fails at once), and returns a fresh IO for it,
  # blocking and close-on-exec. The old IO is dropped unclosed: it may hold bytes the parent
  # read ahead from its own fd 3 (its next frame), which are not the child's.
  def reopen_fifo(io, path, mode, how)
    File.open(path, mode | File::NONBLOCK) { |fifo| io.reopen(fifo) }
    io.autoclose = false
    fresh = IO.for_fd(io.fileno, how, autoclose: true)
    fresh.nonblock = false
    fresh.close_on_exec = true
    fresh
  end

  # Fork mode's child: its own fds 3 and 4, group and random seed, then one invoke frame. It
  # ends with exit!, the status an exit or abort of the runner's gave, or by the signal that
  # ended it, as Ruby would end.
  def fork_child(invocations, results, target, path, file_chld)
    status = begin
      invocations = reopen_fifo(invocations, "#{path}.in", File::RDONLY, 'rb')
      results = reopen_fifo(results, "#{path}.out", File::WRONLY, 'wb')
      results.sync = true
      set_child_group(0)
      trap('CHLD', file_chld || 'SYSTEM_DEFAULT')
      Random.srand(Random.new_seed)
      results.write("ready\n")
      header = invocations.gets("\n", 64)
      serve(invocations, results, target, header) if header # end of file: nothing to serve
      0
    rescue SystemExit => e
      e.status
    rescue SignalException => e
      flush_log
      trap(e.signo, 'SYSTEM_DEFAULT')
      Process.kill(e.signo, Process.pid)
      sleep 1
      128 + e.signo
    rescue Exception => e # rubocop:disable Lint/RescueException -- a bug of the runner's
      warn "runner: #{e.class}: #{e.message}"
      1
    end
    flush_log
    exit!(status)
  end

  # Puts the child in a group of its own. Both sides do it, so that it is in place whichever
  # runs first; it fails only once the child is gone or did it itself.
  def set_child_group(pid)
    Process.setpgid(pid, 0)
  rescue SystemCallError
    nil
  end

  def flush_log
    STDOUT.flush
    STDERR.flush
    $stdout.flush if $stdout.respond_to?(:flush)
  rescue IOError, SystemCallError
    nil
  end

  def read_exactly(io, size)
    data = io.read(size) || ''
    abort "runner: end of file inside a frame (#{data.bytesize} of #{size} bytes)" if data.bytesize != size
    data
  end

  # A frame about invocation `id` (the one its invoke frame named; '0' for the load).
  def send_frame(io, verb, id, body)
    STDOUT.flush # the handler's last log lines before its result
    STDERR.flush
    io.write("#{verb} #{id} #{body.bytesize}\n", body)
  rescue Errno::EPIPE
    exit!(1) # bootstrap is gone
  end

  # Sets each per-event variable the context frame names, or unsets it when null.
  def set_invocation_env(context_bytes)
    context = begin
      JSON.parse(context_bytes)
    rescue JSON::ParserError => e
      abort "runner: the invocation context is not JSON: #{e.message}"
    end
    abort 'runner: the invocation context is not a JSON object' unless context.is_a?(Hash)
    context.each { |name, value| value.nil? ? ENV.delete(name) : ENV[name] = value.to_s }
  end

  def main
    unless ARGV.size == 2
      warn 'usage: runner.rb FILE METHOD'
      exit 2
    end
    file, method = ARGV
    ARGV.clear # as on AWS, where ARGF (Kernel#gets) would otherwise read the handler file
    ENV.delete('BOOTSTRAP_CONVENTION') # bootstrap's setting, not the handler's
    ENV['BOOTSTRAP_FRAMED'] == '1' ? framed(file, method) : plain(file, method)
  end
end

BootstrapRunner.main
