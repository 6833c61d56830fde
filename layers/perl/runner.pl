# runner.pl - Perl runner for the `bootstrap` Lambda custom runtime.
#
# Usage: perl runner.pl FILE METHOD   (cwd = LAMBDA_TASK_ROOT)
# Loads FILE with `do`, finds METHOD (main::METHOD, then <file stem>::METHOD, or a
# fully qualified Pkg::method) and calls METHOD($event_text, $context), where the
# event is the raw bytes (not decoded). The response is a plain string/number as
# is, a reference as JSON, undef as an empty response; a failure is one JSON object
# {errorType, errorMessage, stackTrace}. Core modules only; JSON::PP is loaded on
# demand. Two protocols:
#
# Plain (one process per event): the event is stdin. The handler's STDOUT goes to the
# log (stderr); the response goes to the original stdout, then exit 0; a failure
# goes there too, then exit 70.
#
# Framed (BOOTSTRAP_FRAMED=1; one warm process for many events): FILE is loaded once,
# then "ready\n" is written to fd 4 (or "error <len>\n<failure>", then exit 70). Each
# "invoke <context_len> <event_len>\n<context JSON><event>" read from fd 3 sets the
# LAMBDA_RUNTIME_* variables from the context, calls the handler and answers on fd 4
# with "ok <len>\n<response>" or "error <len>\n<failure>". End of file on fd 3: exit
# 0. STDOUT and STDERR are both the log.

use strict;
use warnings;
use feature 'state';

# The context object passed as the second argument.
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

# The runner's own subs live in their own package so that the handler file, which
# is compiled in package main, cannot clash with them.
package Bootstrap::Runner;

my ($file, $method) = @ARGV;
defined $method or die "usage: runner.pl FILE METHOD\n";
$file = "./$file" unless $file =~ m{\A/};    # `do` would search \@INC otherwise

# Remember the call stack of the most recent die in user code (Carp is core), without
# the runner's own frames.
my $trace = [];
sub remember_trace {
    require Carp;
    $trace = [ grep { length && !/\A(?:eval \{\.\.\.\}|Bootstrap::Runner::\w+\(.*\)) called at \Q${\ __FILE__}\E /s }
               map { s/\A\s+//r } split /\n/, Carp::longmess('') ];
}

# The environment variables set from each key of a framed invocation's context.
my @CONTEXT_ENV = (
    [ aws_request_id       => 'LAMBDA_RUNTIME_AWS_REQUEST_ID' ],
    [ deadline_ms          => 'LAMBDA_RUNTIME_DEADLINE_MS' ],
    [ invoked_function_arn => 'LAMBDA_RUNTIME_INVOKED_FUNCTION_ARN' ],
    [ trace_id             => 'LAMBDA_RUNTIME_TRACE_ID', '_X_AMZN_TRACE_ID' ],
    [ client_context       => 'LAMBDA_RUNTIME_CLIENT_CONTEXT' ],
    [ cognito_identity     => 'LAMBDA_RUNTIME_COGNITO_IDENTITY' ],
    [ tenant_id            => 'LAMBDA_RUNTIME_AWS_TENANT_ID' ],
);

framed() if ($ENV{BOOTSTRAP_FRAMED} // '') eq '1';    # never returns

# The plain protocol: one event on stdin, one response on stdout.
binmode STDIN;
my $event = do { local $/; <STDIN> } // '';
close STDIN;    # resets $. so die messages do not end in "<STDIN> line 1."
open(STDIN, '<', '/dev/null');

# Keep the original stdout for the response; the handler's STDOUT goes to the log.
open(my $RESPONSE, '>&', \*STDOUT) or die "runner: cannot dup stdout: $!\n";
open(STDOUT, '>&', \*STDERR) or die "runner: cannot redirect stdout: $!\n";
binmode $RESPONSE;
select((select(STDOUT), $| = 1)[0]);    # unbuffered log

my $body = eval { call_handler(load_handler($file, $method), $event) };
defined $body ? respond($body, 0) : respond(diagnostic(caught()), 70);

sub respond {
    my ($bytes, $status) = @_;
    print {$RESPONSE} $bytes or die "runner: cannot write the response: $!\n";
    close $RESPONSE or die "runner: cannot write the response: $!\n";
    exit $status;
}

# The handler's code; throws a failure when FILE cannot be loaded or has no METHOD.
sub load_handler {
    my ($file, $method) = @_;

    # Let the handler `use` modules that sit next to it or in the task root.
    (my $dir = $file) =~ s{/[^/]*\z}{};
    unshift @INC, grep { defined && length } $dir, $ENV{LAMBDA_TASK_ROOT};

    $! = 0;
    my $loaded = do {
        local $SIG{__DIE__} = \&remember_trace;
        package main;
        do $file;
    };
    if ($@) {
        failure('Runtime.ImportModuleError', $@, $trace);
    }
    elsif (!defined $loaded && $! && !(-f $file && -r _)) {
        failure('Runtime.ImportModuleError', "Cannot read $file: $!");
    }
    return find_handler($file, $method)
        // failure('Runtime.HandlerNotFound', "Handler '$method' is not defined in $file");
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

# The framed protocol: load once, then serve invocations from fd 3 until its end.
sub framed {
    delete $ENV{BOOTSTRAP_FRAMED};    # not for the handler's own subprocesses
    require Fcntl;
    open(my $in, '<&=', 3) or die "runner: cannot open fd 3: $!\n";
    open(my $out, '>&=', 4) or die "runner: cannot open fd 4: $!\n";
    for my $fh ($in, $out) {
        binmode $fh;
        fcntl($fh, Fcntl::F_SETFD(), Fcntl::FD_CLOEXEC()) or die "runner: fcntl: $!\n";
    }
    select((select($out), $| = 1)[0]);       # each print is one whole frame
    select((select(STDOUT), $| = 1)[0]);    # STDOUT is the log

    my $code = eval { load_handler($file, $method) } or do {
        send_frame($out, 'error', diagnostic(caught()));
        exit 70;
    };
    send_frame($out, 'ready');

    while (defined(my $header = read_header($in))) {
        my ($context_len, $event_len) = $header =~ /\Ainvoke (\d+) (\d+)\n\z/
            or bad_input("malformed frame header '$header'");
        my $context = read_exactly($in, $context_len);
        my $event = read_exactly($in, $event_len);
        set_invocation_env($context);
        my $body = eval { call_handler($code, $event) };
        defined $body ? send_frame($out, 'ok', $body)
                      : send_frame($out, 'error', diagnostic(caught()));
    }
    exit 0;    # end of file: bootstrap retires this worker
}

sub read_header {
    my ($in) = @_;
    local $/ = "\n";
    my $line = <$in>;
    $. = 0;    # so that die messages do not end in "<$in> line 1."
    return $line;
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
    exit 1;
}

# The context is a flat JSON object of strings, numbers and nulls, written by bootstrap. Read it
# with a regular expression: JSON::PP, which is pure Perl, would cost more than the handler.
# Anything else falls back to JSON::PP.
my %UNESCAPE = ('"' => '"', '\\' => '\\', '/' => '/', b => "\b", f => "\f", n => "\n", r => "\r", t => "\t");

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

# Writes "VERB\n", or "VERB <length>\nBYTES" when there are BYTES.
sub send_frame {
    my ($out, $verb, $bytes) = @_;
    local ($,, $\);    # whatever the handler set them to
    my $frame = defined $bytes ? "$verb " . length($bytes) . "\n" . $bytes : "$verb\n";
    print {$out} $frame or exit 1;    # bootstrap is gone
}

sub set_invocation_env {
    my ($text) = @_;
    my $context = parse_context($text);
    ref $context eq 'HASH' or bad_input("the invocation context is not a JSON object");
    for (@CONTEXT_ENV) {
        my ($key, @names) = @$_;
        my $value = $context->{$key};
        utf8::encode($value) if defined $value;    # characters from JSON, bytes in %ENV
        for my $name (@names) {
            if (defined $value) { $ENV{$name} = $value } else { delete $ENV{$name} }
        }
    }
}
