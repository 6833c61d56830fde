# runner.pl - Perl runner for the `bootstrap` Lambda custom runtime.
#
# Usage: perl runner.pl FILE METHOD   (cwd = LAMBDA_TASK_ROOT)
#
# Two conventions, chosen by BOOTSTRAP_CONVENTION (removed from %ENV before any user code):
#
# The default (seed) one loads FILE with `do`, finds METHOD (main::METHOD, then <file
# stem>::METHOD, or a fully qualified Pkg::method) and calls METHOD($event_text, $context),
# where the event is the raw bytes (not decoded) and $context a hash with accessor methods of
# the same names as p5-aws-lambda's. The response is a plain string/number as is, a reference
# as JSON, undef as an empty response; a failure is one JSON object {errorType, errorMessage,
# stackTrace}. A FILE that does not compile is Runtime.UserCodeSyntaxError (perl's own
# message); one that cannot be read, or dies while it loads (a missing `use`d module too), is
# Runtime.ImportModuleError; a missing sub is Runtime.HandlerNotFound.
#
# "p5-aws-lambda" does what that community layer's AWS::Lambda::Bootstrap does: _HANDLER split
# at its first dot into a file and a function, `require` of $LAMBDA_TASK_ROOT/<file>.pl,
# main->can(<function>); the event decoded from JSON and the result JSON-encoded (as its
# encode_json/decode_json: utf8, scalars allowed, not canonical); an AWS::Lambda::Context; and
# $AWS::Lambda::context and _X_AMZN_TRACE_ID set for the call. A code ref returned is called
# with a responder: $responder->($content_type) gives a writer with write($bytes) and close.
# Errors are {errorMessage: "$error", errorType: its class or "Error"}, with no stack trace.
#
# Core modules only; JSON::PP is loaded on demand. Two protocols:
#
# Plain (one process per event): the event is stdin. The handler's STDOUT goes to the
# log (stderr); the response goes to the original stdout, then exit 0; a failure
# goes there too, then exit 70. A streamed response is written to stdout as it comes (its
# content type is bootstrap's to set); a stream that fails after its first bytes logs the
# error and exits 1.
#
# Framed (BOOTSTRAP_FRAMED=1; one warm process for many events): FILE is loaded once, then
# the runner serves the invocations bootstrap sends as frames on fds 3 and 4, as
# layers/PROTOCOL.md describes (a stream as stream and chunk frames of at most 1 MiB each).
# STDOUT and STDERR are both the log.
#
# Fork (BOOTSTRAP_FRAMED=1 and BOOTSTRAP_ISOLATION=fork): FILE is loaded once by a parent that
# never calls the handler; it forks a child for each `fork <n>` frame and reports it, and reaps
# child n when a `reap <n>` frame asks. The child takes $BOOTSTRAP_FORK_DIR/<n>.in and <n>.out as fds 3 and 4, becomes a process
# group leader, reseeds rand, says ready, serves one invoke frame as framed mode does and leaves
# with POSIX::_exit, so that END blocks and destructors run in the parent only.

use strict;
use warnings;
use feature 'state';

# The context object passed as the second argument in the default convention: a hash, as in
# the seed, with accessor methods named as p5-aws-lambda's (and AWS's other runtimes') are.
{
    package Bootstrap::Context;

    my %FROM_ENV = (
        aws_request_id       => 'LAMBDA_RUNTIME_AWS_REQUEST_ID',
        invoked_function_arn => 'LAMBDA_RUNTIME_INVOKED_FUNCTION_ARN',
        deadline_ms          => 'LAMBDA_RUNTIME_DEADLINE_MS',
        trace_id             => 'LAMBDA_RUNTIME_TRACE_ID',
        client_context       => 'LAMBDA_RUNTIME_CLIENT_CONTEXT',
        identity             => 'LAMBDA_RUNTIME_COGNITO_IDENTITY',
        tenant_id            => 'LAMBDA_RUNTIME_AWS_TENANT_ID',
        function_name        => 'AWS_LAMBDA_FUNCTION_NAME',
        function_version     => 'AWS_LAMBDA_FUNCTION_VERSION',
        memory_limit_in_mb   => 'AWS_LAMBDA_FUNCTION_MEMORY_SIZE',
        log_group_name       => 'AWS_LAMBDA_LOG_GROUP_NAME',
        log_stream_name      => 'AWS_LAMBDA_LOG_STREAM_NAME',
    );

    # One reader per key; they read the hash, so a handler that changed a value sees it.
    for my $key (keys %FROM_ENV) {
        no strict 'refs';
        *{"Bootstrap::Context::$key"} = sub { $_[0]{$key} };
    }

    sub from_env {
        my ($class) = @_;
        my %self = map { $_ => $ENV{ $FROM_ENV{$_} } } keys %FROM_ENV;
        return bless \%self, $class;
    }

    # Milliseconds left before the deadline; never negative, 0 when no deadline is known.
    sub get_remaining_time_in_millis {
        my ($self) = @_;
        my $deadline = $self->{deadline_ms};
        return 0 unless defined $deadline && $deadline =~ /\A\d+\z/;
        require Time::HiRes;
        my $left = $deadline - int(Time::HiRes::time() * 1000);
        return $left > 0 ? $left : 0;
    }
}

# p5-aws-lambda's AWS::Lambda::Context, for functions that do not ship that module: the same
# hash keys, the same accessors, and the same failures (its accessors of function-level values
# die when the variable is missing; identity and client_context are undef there too). It
# becomes AWS::Lambda::Context's parent only when the real module cannot be loaded (see
# p5_modules), so that a function that ships p5-aws-lambda gets its own version's code.
{
    package Bootstrap::P5::Context;

    sub new {
        my ($proto, @args) = @_;
        my %args = (@args == 1 && ref $args[0] eq 'HASH') ? %{ $args[0] } : @args;
        my $deadline_ms = $args{deadline_ms} // die 'deadline_ms is required';
        return bless {
            deadline_ms          => $deadline_ms,
            invoked_function_arn => $args{invoked_function_arn} // '',
            aws_request_id       => $args{aws_request_id} // '',
            trace_id             => $args{trace_id},
            tenant_id            => $args{tenant_id},
        }, ref $proto || $proto;
    }

    # Not rounded nor clamped: p5-aws-lambda returns the float difference.
    sub get_remaining_time_in_millis {
        my ($self) = @_;
        require Time::HiRes;
        return $self->{deadline_ms} - Time::HiRes::time() * 1000;
    }

    sub function_name      { $ENV{AWS_LAMBDA_FUNCTION_NAME} // die 'function_name is not found' }
    sub function_version   { $ENV{AWS_LAMBDA_FUNCTION_VERSION} // die 'function_version is not found' }
    sub memory_limit_in_mb { $ENV{AWS_LAMBDA_FUNCTION_MEMORY_SIZE} // die 'memory_limit_in_mb is not found' }
    sub log_group_name     { $ENV{AWS_LAMBDA_LOG_GROUP_NAME} // die 'log_group_name is not found' }
    sub log_stream_name    { $ENV{AWS_LAMBDA_LOG_STREAM_NAME} // die 'log_stream_name is not found' }
    sub invoked_function_arn { $_[0]{invoked_function_arn} }
    sub aws_request_id       { $_[0]{aws_request_id} }
    sub tenant_id            { $_[0]{tenant_id} }
    sub identity       { return undef }    ## no critic (ProhibitExplicitReturnUndef): as p5 does
    sub client_context { return undef }    ## no critic (ProhibitExplicitReturnUndef)
}

# The writer a p5-aws-lambda responder returns. Its answers are those of p5's writer over
# HTTP::Tiny: write returns the bytes of the HTTP chunk it made ("0E0" for nothing), dies on
# wide characters and after close; close returns 5, then nothing once closed.
{
    package Bootstrap::P5::ResponseWriter;

    sub new { bless { closed => 0 }, $_[0] }

    sub write {
        my ($self, $data) = @_;
        if ($self->{closed}) {
            require Carp;
            Carp::croak('write failed: already closed');
        }
        return '0E0' if !defined $data || length($data) == 0;
        my $bytes = "$data";
        utf8::downgrade($bytes, 1) or die "Wide character in write()\n";
        Bootstrap::Runner::stream_chunk($bytes);
        return length(sprintf '%X', length $bytes) + length($bytes) + 4;
    }

    sub close {
        my ($self) = @_;
        return if $self->{closed};
        $self->{closed} = 1;
        Bootstrap::Runner::stream_end();
        return 5;
    }

    sub _close_with_error {
        my ($self, $error) = @_;
        return if $self->{closed};
        $self->{closed} = 1;
        Bootstrap::Runner::stream_fail(Bootstrap::Runner::p5_error_document($error));
        return;
    }
}

# The runner's own subs live in their own package so that the handler file, which
# is compiled in package main, cannot clash with them.
package Bootstrap::Runner;

use constant MAX_CHUNK => 1024 * 1024;    # bytes per chunk frame

my ($file, $method) = @ARGV;
if (@ARGV != 2) {
    print STDERR "usage: runner.pl FILE METHOD\n";
    exit 2;
}

my $convention = delete $ENV{BOOTSTRAP_CONVENTION} // '';
my $P5 = $convention eq 'p5-aws-lambda';
if ($P5) {
    # p5-aws-lambda reads _HANDLER itself: the file is what comes before the first dot, with
    # ".pl", in the task root; the function is all the rest (dots included).
    if (defined $ENV{_HANDLER}) {
        my ($name, $function) = split /[.]/, $ENV{_HANDLER}, 2;
        $file = ($ENV{LAMBDA_TASK_ROOT} // '.') . "/$name.pl";
        $method = $function // '';
    }
    # p5 sets it only for the length of the handler call.
    delete $ENV{_X_AMZN_TRACE_ID};
}
else {
    $file = "./$file" unless $file =~ m{\A/};    # `do` would search \@INC otherwise
}

# Where answers go: the original stdout (plain) or fd 4 (framed), with the id of the invocation
# being answered (0 for the load); and the bytes a plain-mode stream has written to stdout.
my ($RESPONSE, $FRAMES);
my $INVOCATION = 0;
my $streamed = 0;

# Remember the call stack of the most recent die in user code (Carp is core), without
# the runner's own frames.
my $trace = [];
sub remember_trace {
    require Carp;
    $trace = [ grep { length && !/\A(?:eval \{\.\.\.\}|Bootstrap::Runner::\w+\(.*\)) called at \Q${\ __FILE__}\E /s }
               map { s/\A\s+//r } split /\n/, Carp::longmess('') ];
}

# JSON string escapes, for parse_context (set here, before framed() starts using it).
my %UNESCAPE = ('"' => '"', '\\' => '\\', '/' => '/', b => "\b", f => "\f", n => "\n", r => "\r", t => "\t");

framed() if ($ENV{BOOTSTRAP_FRAMED} // '') eq '1';    # never returns

# The plain protocol: one event on stdin, one response on stdout.
binmode STDIN;
my $event = do { local $/; <STDIN> } // '';
close STDIN;    # resets $. so die messages do not end in "<STDIN> line 1."
open(STDIN, '<', '/dev/null');

# Keep the original stdout for the response; the handler's STDOUT goes to the log.
open($RESPONSE, '>&', \*STDOUT) or die "runner: cannot dup stdout: $!\n";
open(STDOUT, '>&', \*STDERR) or die "runner: cannot redirect stdout: $!\n";
binmode $RESPONSE;
select((select(STDOUT), $| = 1)[0]);    # unbuffered log

if ($P5) {
    my $code = eval { p5_load($file, $method) } or respond(diagnostic(caught()), 70);
    p5_serve($code, $event);
    exit 0;    # after a stream: every other answer has exited already
}
my $body = eval { known_convention(); call_handler(load_handler($file, $method), $event) };
defined $body ? respond($body, 0) : respond(diagnostic(caught()), 70);

# A convention this runner does not know is a configuration error, reported as the load's.
sub known_convention {
    return if $convention eq '' || $P5;
    failure('Runtime.InvalidConfig',
        "The Perl runner knows no convention '$convention' (known: p5-aws-lambda)");
}

sub respond {
    my ($bytes, $status) = @_;
    print {$RESPONSE} $bytes or die "runner: cannot write the response: $!\n";
    close $RESPONSE or die "runner: cannot write the response: $!\n";
    exit $status;
}

# The event's one answer, "ok" (the response) or "error" (a failure document), in either
# protocol; in plain mode the runner exits with it.
sub answer {
    my ($verb, $bytes) = @_;
    return send_frame($FRAMES, $verb, $bytes) if $FRAMES;
    respond($bytes, $verb eq 'ok' ? 0 : 70);
}

# The handler's code; throws a failure when FILE cannot be loaded or has no METHOD.
sub load_handler {
    my ($file, $method) = @_;

    # Let the handler `use` modules that sit next to it or in the task root.
    (my $dir = $file) =~ s{/[^/]*\z}{};
    unshift @INC, grep { defined && length } $dir, $ENV{LAMBDA_TASK_ROOT};

    # Whether FILE compiled and its own code started to run, as seen by the die hook; and
    # whether that hook stayed in place (FILE may install its own).
    my ($ran, $watched) = (0, 0);
    my $watch = sub { remember_trace(); $ran ||= running_after_compile() };
    $! = 0;
    my $loaded;
    {
        local $SIG{__DIE__} = $watch;
        $loaded = do {
            package main;
            do $file;
        };
        $watched = ref $SIG{__DIE__} && $SIG{__DIE__} == $watch;
    }
    if ($@) {
        my $type = load_error_type($@, $file, $ran, $watched);
        failure($type, $@, $type eq 'Runtime.UserCodeSyntaxError' ? [] : $trace);
    }
    elsif (!defined $loaded && $! && !(-f $file && -r _)) {
        failure('Runtime.ImportModuleError', "Cannot read $file: $!");
    }
    return find_handler($file, $method)
        // failure('Runtime.HandlerNotFound', "Handler '$method' is not defined in $file");
}

# For the die hook while FILE loads: whether the die comes from code that runs after FILE
# compiled. $^S is undef while perl is parsing, which includes BEGIN blocks (`use` too) run
# from the parser; code that a BEGIN block calls after its own compilation (a `use`d
# module's body) has $^S defined, but a BEGIN frame on the stack.
sub running_after_compile {
    return 0 unless defined $^S;
    for (my $level = 1; my @frame = caller $level; $level++) {
        return 0 if $frame[3] =~ /(?:\A|::)(?:BEGIN|UNITCHECK)\z/;
    }
    return 1;
}

# Why FILE failed to load, from the die hook's record and perl's own wording: a die after it
# compiled, or in a BEGIN block of its own (a missing or failing `use`d module: perl then
# ends $@ with "BEGIN failed--compilation aborted at FILE"), is an import error. Anything else
# stopped the compilation itself: a syntax error, which perl reports without calling the hook
# at all (or from the parser, with $^S undef). When FILE replaced the hook, nothing tells
# compile from run but perl's "syntax error at FILE" wording.
sub load_error_type {
    my ($error, $file, $ran, $watched) = @_;
    my $import = 'Runtime.ImportModuleError';
    return $import if $ran || ref $error;
    return $import if $error =~ /BEGIN failed--compilation aborted at \Q$file\E line \d+\.\n\z/;
    return 'Runtime.UserCodeSyntaxError' if $watched;
    return $error =~ /^syntax error at \Q$file\E line /m ? 'Runtime.UserCodeSyntaxError' : $import;
}

sub find_handler {
    my ($file, $method) = @_;
    my @names = ($method);
    if ($method !~ /::/) {
        @names = ("main::$method");
        my ($stem) = $file =~ m{([^/]+?)(?:\.[^./]*)?\z};
        push @names, "${stem}::$method" if defined $stem && $stem =~ /\A[A-Za-z_]\w*\z/;
    }
    no strict 'refs';
    for my $name (@names) {
        return \&{$name} if defined &{$name};
    }
    return;
}

# Calls the handler with the event and a context from %ENV; returns the response
# bytes or throws a failure.
sub call_handler {
    my ($code, $event) = @_;
    $trace = [];
    my $result;
    eval {
        local $SIG{__DIE__} = \&remember_trace;
        $result = $code->($event, Bootstrap::Context->from_env);
        1;
    } or handler_error($@);

    my $body = '';
    if (ref $result) {
        $body = eval { json()->encode($result) } // do {
            (my $why = $@) =~ s/ at \S+ line \d+\.\n\z//;
            failure('Runtime.MarshalError', "Cannot encode the handler result as JSON: $why");
        };
    }
    elsif (defined $result) {
        $body = "$result";
        utf8::encode($body) if utf8::is_utf8($body);
    }
    return $body;
}

sub handler_error {
    my ($err) = @_;
    $err = 'Died' if !ref $err && !length($err // '');
    require Scalar::Util;
    if (Scalar::Util::blessed($err)) {
        my $message = eval { $err->can('message') ? $err->message : "$err" } // "$err";
        failure(ref $err, $message, $trace);
    }
    failure('Error', ref $err ? eval { json()->encode($err) } // "$err" : "$err", $trace);
}

sub json {
    require JSON::PP;
    state $json = JSON::PP->new->utf8->allow_nonref->convert_blessed;
    return $json;
}

# Throw an error for the event (or the load): caught by each protocol's loop, which
# turns it into a diagnostic.
sub failure {
    my ($type, $message, $stack) = @_;
    local $SIG{__DIE__};    # not the handler's own hook, if it installed one
    die bless { type => $type, message => $message, stack => $stack }, 'Bootstrap::Failure';
}

# The failure in $@; anything else (a bug in the runner) is passed on.
sub caught {
    my $err = $@;
    die $err unless ref $err eq 'Bootstrap::Failure';
    return $err;
}

# A failure as its JSON document (bytes), with a summary line to the log.
sub diagnostic {
    my ($failure) = @_;
    return $failure->{document} if defined $failure->{document};    # p5's, complete
    my ($type, $message) = @$failure{qw(type message)};
    my $stack = [ @{ $failure->{stack} // [] } ];
    $message //= '';
    $message =~ s/\n\z//;
    my $summary = "ERROR [$type] " . ($message =~ s/\s*\n\s*/ | /gr) . "\n";
    utf8::encode($summary) if utf8::is_utf8($summary);
    print STDERR $summary;
    # Messages are usually byte strings; treat them as UTF-8 when they are valid UTF-8.
    for my $s ($type, $message, @$stack) {
        utf8::decode($s) unless utf8::is_utf8($s);
    }
    my $error = { errorType => $type, errorMessage => $message, stackTrace => $stack };
    return json()->encode($error);
}

# --- p5-aws-lambda's convention -----------------------------------------------------------

# encode_json and decode_json as p5-aws-lambda calls them (JSON::XS 4: UTF-8, any scalar
# allowed, keys in hash order, blessed objects refused), with the core JSON::PP. JSON::XS
# writes a scalar perl holds as a string as a JSON string, even one also used as a number
# ("5" after "5" + 1); JSON::PP does so only with PERL_JSON_PP_USE_B, which it reads when it
# loads. So p5_load calls this first, before the handler file can load JSON::PP itself.
sub p5_json {
    state $json = do {
        local $ENV{PERL_JSON_PP_USE_B} = 1;
        require JSON::PP;
        JSON::PP->new->utf8->allow_nonref;
    };
    return $json;
}

# The handler's code as p5-aws-lambda finds it: `require` of the file (so it must return a
# true value, and a compile error reads "Compilation failed in require"), then main->can,
# which also finds a fully qualified Pkg::name. A path, not a module name, is required: the
# file is loaded, nothing built from the name is evaluated. Throws p5's init error.
sub p5_load {
    my ($file, $function) = @_;
    p5_json();
    p5_modules();
    return eval {
        package main;
        require $file;
        main->can($function) // die "handler $function is not found";
    } // p5_failure($@);
}

# The modules a p5-aws-lambda handler may `use` although they are no files here. When the
# function ships p5-aws-lambda (its lib on @INC now), its own AWS::Lambda::Context is loaded
# and used, so that it behaves as that version does. Otherwise the runner's class becomes
# AWS::Lambda::Context's parent, and %INC says it is loaded, so `use AWS::Lambda::Context`
# works and isa('AWS::Lambda::Context') is true, without shipping their module. AWS::Lambda
# itself is only the home of $AWS::Lambda::context (and layer tables nobody needs here).
sub p5_modules {
    state $done;
    return if $done++;
    if (!$INC{'AWS/Lambda/Context.pm'}) {
        my $shipped = on_inc('AWS/Lambda/Context.pm') && eval { require AWS::Lambda::Context; 1 };
        if (!$shipped) {
            @AWS::Lambda::Context::ISA = ('Bootstrap::P5::Context');
            $INC{'AWS/Lambda/Context.pm'} = __FILE__;
        }
    }
    if (!$INC{'AWS/Lambda.pm'} && !on_inc('AWS/Lambda.pm')) {
        $AWS::Lambda::VERSION = '0.10.0';    # the release whose behaviour this follows
        $INC{'AWS/Lambda.pm'} = __FILE__;
    }
}

sub on_inc {
    my ($relative) = @_;
    return scalar grep { !ref && -f "$_/$relative" } @INC;
}

# {"errorMessage": "$error", "errorType": its class or "Error"}, as p5-aws-lambda posts an
# error: the message as perl stringifies it, trailing newline and all.
sub p5_error_document {
    my ($error) = @_;
    require Scalar::Util;
    my $type = Scalar::Util::blessed($error) // 'Error';
    return p5_json()->encode({ errorMessage => "$error", errorType => "$type" });
}

sub p5_failure {
    my ($error) = @_;
    local $SIG{__DIE__};
    die bless { document => p5_error_document($error) }, 'Bootstrap::Failure';
}

# One event, answered in either protocol. As in p5-aws-lambda, an event that is not JSON, or
# a result JSON cannot encode (a blessed object, a code ref inside), dies outside any eval:
# the process ends, and the event gets bootstrap's Runtime.ExitError.
sub p5_serve {
    my ($code, $event) = @_;
    my $payload = p5_json()->decode($event);
    my $context = AWS::Lambda::Context->new(
        deadline_ms          => $ENV{LAMBDA_RUNTIME_DEADLINE_MS},
        aws_request_id       => $ENV{LAMBDA_RUNTIME_AWS_REQUEST_ID},
        invoked_function_arn => $ENV{LAMBDA_RUNTIME_INVOKED_FUNCTION_ARN},
        trace_id             => $ENV{LAMBDA_RUNTIME_TRACE_ID},
        tenant_id            => $ENV{LAMBDA_RUNTIME_AWS_TENANT_ID},
    );
    my ($response, $ok, $error);
    {
        no warnings 'once';    # the handler's module, not the runner, reads it
        local $AWS::Lambda::context = $context;
        local $ENV{_X_AMZN_TRACE_ID};
        delete $ENV{_X_AMZN_TRACE_ID};
        $ENV{_X_AMZN_TRACE_ID} = $context->{trace_id} if defined $context->{trace_id};
        $ok = eval { $response = $code->($payload, $context); 1 };
        $error = $@;
    }
    if (!$ok) {
        print STDERR "$error";
        return answer('error', p5_error_document($error));
    }
    return p5_stream($response) if ref $response eq 'CODE';
    return answer('ok', p5_json()->encode($response));
}

# A streamed response: the code ref called with a responder (after the handler returned, so
# without $AWS::Lambda::context, as in p5). The stream opens when the responder is called,
# each write is a chunk, close ends it (returning from the code ref closes it too). A die
# before the responder was called is an ordinary error; after, it ends the stream with the
# error, unless the stream was closed already, when it is only logged. A code ref that never
# calls the responder gets an empty response (p5 would post nothing at all).
sub p5_stream {
    my ($response) = @_;
    my ($writer, $over);
    my $responder = sub {
        my ($content_type) = @_;
        die "the responder can open one stream, while its invocation lasts\n" if $writer || $over;
        stream_open($content_type // '');
        return $writer = Bootstrap::P5::ResponseWriter->new;
    };
    my $ok = eval { $response->($responder); 1 };
    my $error = $@;
    $over = 1;
    if (!$ok) {
        print STDERR "$error";
        return answer('error', p5_error_document($error)) if !$writer;
        $writer->_close_with_error($error);
    }
    return answer('ok', '') if !$writer;
    $writer->close;    # returning from the code ref closes it too
    stream_finish();
}

sub stream_open {
    my ($content_type) = @_;
    return send_frame($FRAMES, 'stream', $content_type) if $FRAMES;
    select((select($RESPONSE), $| = 1)[0]);    # each write goes out as it is made
}

sub stream_chunk {
    my ($bytes) = @_;
    if ($FRAMES) {
        for (my $at = 0; $at < length $bytes; $at += MAX_CHUNK) {
            send_frame($FRAMES, 'chunk', substr($bytes, $at, MAX_CHUNK));
        }
        return;
    }
    print {$RESPONSE} $bytes or die "runner: cannot write the response: $!\n";
    $streamed += length $bytes;
}

# A stream the writer closed. bootstrap counts an event as answered at its last frame and may
# then retire the worker, so that frame waits until the code ref has returned: code after
# close still runs, as it does in p5's process.
my $end_pending;

sub stream_end {
    $end_pending = 1 if $FRAMES;
}

sub stream_finish {
    return if !$end_pending;
    $end_pending = 0;
    send_frame($FRAMES, 'ok', '');
}

# A stream that failed. In plain mode, stdout can hold an error document only if nothing was
# written yet; otherwise the error is in the log, and a non-zero exit makes it the event's.
sub stream_fail {
    my ($document) = @_;
    return send_frame($FRAMES, 'error', $document) if $FRAMES;
    respond($document, 70) if !$streamed;
    exit 1;
}

# --- The framed protocol ------------------------------------------------------------------

# Load once, then serve invocations from fd 3 until its end (or, in fork mode, fork a child
# for each).
sub framed {
    delete $ENV{BOOTSTRAP_FRAMED};    # not for the handler's own subprocesses
    my $fork = (delete $ENV{BOOTSTRAP_ISOLATION} // '') eq 'fork';
    my $fork_dir = delete $ENV{BOOTSTRAP_FORK_DIR};
    bad_input("BOOTSTRAP_ISOLATION=fork without BOOTSTRAP_FORK_DIR") if $fork && !length($fork_dir // '');
    require Fcntl;
    my $in = channel('<', 3);
    my $out = channel('>', 4);
    select((select(STDOUT), $| = 1)[0]);    # STDOUT is the log
    $FRAMES = $out;

    my $code = eval {
        known_convention();
        $P5 ? p5_load($file, $method) : load_handler($file, $method);
    } or do {
        send_frame($out, 'error', diagnostic(caught()));
        exit 70;
    };
    send_frame($out, 'ready');
    fork_parent($in, $out, $code, $fork_dir) if $fork;    # never returns

    while (defined(my $header = read_header($in))) {
        serve($in, $code, $header);
    }
    exit 0;    # end of file: bootstrap retires this worker
}

# A handle on fd FD (already open), binary, close-on-exec, and flushed at each print.
sub channel {
    my ($mode, $fd) = @_;
    open(my $fh, "$mode&=", $fd) or die "runner: cannot open fd $fd: $!\n";
    binmode $fh;
    fcntl($fh, Fcntl::F_SETFD(), Fcntl::FD_CLOEXEC()) or die "runner: fcntl: $!\n";
    select((select($fh), $| = 1)[0]);    # each print is one whole frame
    return $fh;
}

# Answers the invoke frame whose header line is HEADER.
sub serve {
    my ($in, $code, $header) = @_;
    my ($id, $context_len, $event_len) = $header =~ /\Ainvoke (\d+) (\d+) (\d+)\n\z/
        or bad_input("malformed frame header '$header'");
    $INVOCATION = $id;
    my $context = read_exactly($in, $context_len);
    my $event = read_exactly($in, $event_len);
    set_invocation_env($context);
    return p5_serve($code, $event) if $P5;
    my $body = eval { call_handler($code, $event) };
    defined $body ? send_frame($FRAMES, 'ok', $body)
                  : send_frame($FRAMES, 'error', diagnostic(caught()));
}

# --- Fork mode ----------------------------------------------------------------------------

# Whether this process is a forked child, which must leave with POSIX::_exit.
my $CHILD;

# The parent: a child for each `fork <n>` frame, not waited for (bootstrap asks for the next
# event's child while the current one runs), and each child reaped when `reap <n>` asks. It
# keeps SIGCHLD at its default (a handler file may have ignored it, which would reap a child
# before waitpid sees it); the child gets the file's setting back.
sub fork_parent {
    my ($in, $out, $code, $dir) = @_;
    require POSIX;
    require IO::Handle;    # loaded once here, not in every child
    my $file_chld = $SIG{CHLD};
    $SIG{CHLD} = 'DEFAULT';
    my %children;
    while (defined(my $header = read_header($in))) {
        my ($verb, $n) = $header =~ /\A(fork|reap) ([1-9]\d*)\n\z/
            or bad_input("malformed frame header '$header'");
        if ($verb eq 'reap') {
            my $pid = delete $children{$n} // bad_input("reap of child $n, which is not one of ours");
            waitpid($pid, 0) == $pid or bad_input("cannot wait for child $n: $!");
            my $status = $?;
            send_line($out, $status & 127 ? "signal $n " . ($status & 127) : "exit $n " . ($status >> 8));
            next;
        }
        my $pid = fork // bad_input("cannot fork: $!");
        fork_child($in, $out, $code, "$dir/$n", $file_chld) if !$pid;    # never returns
        setpgid($pid);    # the child does too; whichever comes first
        $children{$n} = $pid;
        send_line($out, "child $n $pid");
    }
    exit 0;    # end of file: bootstrap retires this worker
}

# The child: its own fds 3 and 4, group and random seed, then one invoke frame.
sub fork_child {
    my ($in, $out, $code, $path, $file_chld) = @_;
    $CHILD = 1;
    $? = 0;    # the status of the parent's previous child
    close $in;
    close $out;
    # Without waiting (bootstrap holds its ends; if it is gone, `.out` fails at once), then
    # blocking.
    open_fd(3, POSIX::O_RDONLY() | POSIX::O_NONBLOCK(), "$path.in");
    open_fd(4, POSIX::O_WRONLY() | POSIX::O_NONBLOCK(), "$path.out");
    $in = channel('<', 3);
    $FRAMES = $out = channel('>', 4);
    defined($_->blocking(1)) or bad_input("cannot make fd 3 or 4 blocking: $!") for $in, $out;
    setpgid(0);
    if (defined $file_chld) { $SIG{CHLD} = $file_chld } else { delete $SIG{CHLD} }
    srand(random_seed());
    send_frame($out, 'ready');
    my $ok = eval {
        my $header = read_header($in);
        serve($in, $code, $header) if defined $header;    # end of file: nothing to serve
        1;
    };
    # A die outside the handler's eval (p5's undecodable event) ends the child as it would end
    # perl, with the message and status perl gives it, but without END blocks.
    my $status = 0;
    if (!$ok) {
        $status = ($! + 0) || ($? >> 8) || 255;
        print STDERR $@;
    }
    leave($status);
}

# Opens PATH with FLAGS as fd FD (which must be free or unused).
sub open_fd {
    my ($fd, $flags, $path) = @_;
    my $got = POSIX::open($path, $flags) // bad_input("cannot open $path: $!");
    return if $got == $fd;
    POSIX::dup2($got, $fd) // bad_input("cannot move $path to fd $fd: $!");
    POSIX::close($got);
}

# Writes one of the parent's frames, a header line without bytes.
sub send_line {
    my ($out, $line) = @_;
    local ($,, $\);    # whatever the handler file set them to
    print {$out} "$line\n" or exit 1;    # bootstrap is gone
}

sub setpgid {
    my ($pid) = @_;
    POSIX::setpgid($pid, $pid);    # fails only once the other side did it, or the child is gone
}

# A seed from the system's entropy (two children of one parent otherwise draw the same
# numbers); from the time and pid if /dev/urandom cannot be read.
sub random_seed {
    my $bytes = '';
    if (open(my $random, '<:raw', '/dev/urandom')) {
        read($random, $bytes, 4);
        close $random;
    }
    return unpack('L', $bytes) if length $bytes == 4;
    require Time::HiRes;
    return int(Time::HiRes::time() * 1e6) ^ ($$ << 16);
}

# Ends the process with STATUS: exit in a framed worker or the parent, POSIX::_exit after
# flushing the log and fd 4 in a child.
sub leave {
    my ($status) = @_;
    exit $status if !$CHILD;
    for my $fh (grep { defined } \*STDOUT, \*STDERR, $FRAMES) {
        my $old = select $fh;
        $| = 1;    # setting it flushes what is buffered
        select $old;
    }
    POSIX::_exit($status);
}

# A header line, at most 64 bytes with its newline (a longer one is refused, not cut); undef
# at end of file.
sub read_header {
    my ($in) = @_;
    my $line = '';
    while (length $line < 64) {
        my $got = read($in, $line, 1, length $line) // bad_input("cannot read fd 3: $!");
        return length $line ? bad_input("end of file inside a frame header") : undef if !$got;
        return $line if substr($line, -1) eq "\n";
    }
    bad_input("a frame header line over 64 bytes");
}

sub read_exactly {
    my ($in, $size) = @_;
    my $data = '';
    while (length $data < $size) {
        my $got = read($in, $data, $size - length $data, length $data)
            // bad_input("cannot read fd 3: $!");
        $got or bad_input("end of file inside a frame");
    }
    return $data;
}

sub bad_input {
    print STDERR "runner: $_[0]\n";
    leave(1);
}

# The context is a flat JSON object of strings and nulls, written by bootstrap. Read it with a
# regular expression: JSON::PP, which is pure Perl, would cost more than the handler. Anything
# else falls back to JSON::PP.

sub parse_context {
    my ($text) = @_;
    my %context;
    my $pair = qr/"(\w+)":(?:(null)|(-?\d+)|"((?:[^"\\]|\\.)*)")/;
    if ($text =~ /\A\{(?:$pair(?:,$pair)*)?\}\z/) {
        while ($text =~ /$pair/g) {
            my ($key, $null, $number, $string) = ($1, $2, $3, $4);
            next if defined $null;
            if (defined $string) {
                $string =~ s{\\u([0-9a-fA-F]{4})|\\(.)}{defined $1 ? chr(hex $1) : ($UNESCAPE{$2} // $2)}ge;
                utf8::decode($string);
            }
            $context{$key} = $number // $string;
        }
        return \%context;
    }
    return eval { json()->decode($text) };
}

# Writes "VERB\n", or "VERB <invocation id> <length>\nBYTES" when there are BYTES.
sub send_frame {
    my ($out, $verb, $bytes) = @_;
    local ($,, $\);    # whatever the handler set them to
    my $frame = defined $bytes ? "$verb $INVOCATION " . length($bytes) . "\n" . $bytes : "$verb\n";
    print {$out} $frame or leave(1);    # bootstrap is gone
}

# Sets each per-event variable the context frame names, or unsets it when null.
sub set_invocation_env {
    my ($text) = @_;
    my $context = parse_context($text);
    ref $context eq 'HASH' or bad_input("the invocation context is not a JSON object");
    while (my ($name, $value) = each %$context) {
        utf8::encode($value) if defined $value;    # characters from JSON, bytes in %ENV
        if (defined $value) { $ENV{$name} = $value } else { delete $ENV{$name} }
    }
    delete $ENV{_X_AMZN_TRACE_ID} if $P5;    # p5 sets it only for the handler call
}
