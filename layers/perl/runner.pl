# runner.pl - Perl runner for the `bootstrap` Lambda custom runtime.
#
# Usage: perl runner.pl FILE METHOD   (one process per event, cwd = LAMBDA_TASK_ROOT)
# Loads FILE with `do`, finds METHOD (main::METHOD, then <file stem>::METHOD, or a
# fully qualified Pkg::method) and calls METHOD($event_text, $context), where the
# event is the raw stdin bytes (not decoded). The handler's STDOUT goes to the log
# (stderr); the response goes to the original stdout: a plain string/number as is,
# a reference as JSON, undef as an empty response; then exit 0. On failure the
# runner writes one JSON object {errorType, errorMessage, stackTrace} to the
# original stdout and exits 70. Core modules only; JSON::PP is loaded on demand.

use strict;
use warnings;

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

binmode STDIN;
my $event = do { local $/; <STDIN> } // '';
close STDIN;    # resets $. so die messages do not end in "<STDIN> line 1."
open(STDIN, '<', '/dev/null');

# Keep the original stdout for the response; the handler's STDOUT goes to the log.
open(my $RESPONSE, '>&', \*STDOUT) or die "runner: cannot dup stdout: $!\n";
open(STDOUT, '>&', \*STDERR) or die "runner: cannot redirect stdout: $!\n";
binmode $RESPONSE;
select((select(STDOUT), $| = 1)[0]);    # unbuffered log

# Let the handler `use` modules that sit next to it or in the task root.
{
    (my $dir = $file) =~ s{/[^/]*\z}{};
    unshift @INC, grep { defined && length } $dir, $ENV{LAMBDA_TASK_ROOT};
}

# Remember the call stack of the most recent die in user code (Carp is core).
my $trace = [];
sub remember_trace {
    require Carp;
    $trace = [ grep { length && !/\Aeval \{\.\.\.\} called at \Q${\ __FILE__}\E / }
               map { s/\A\s+//r } split /\n/, Carp::longmess('') ];
}

$! = 0;
my $loaded = do {
    local $SIG{__DIE__} = \&remember_trace;
    package main;
    do $file;
};
if ($@) {
    fail('Runtime.ImportModuleError', $@, $trace);
}
elsif (!defined $loaded && $! && !(-f $file && -r _)) {
    fail('Runtime.ImportModuleError', "Cannot read $file: $!");
}

my $code = find_handler($file, $method)
    or fail('Runtime.HandlerNotFound', "Handler '$method' is not defined in $file");

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
        fail('Runtime.MarshalError', "Cannot encode the handler result as JSON: $why");
    };
}
elsif (defined $result) {
    $body = "$result";
    utf8::encode($body) if utf8::is_utf8($body);
}
respond($body, 0);

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

sub handler_error {
    my ($err) = @_;
    $err = 'Died' if !ref $err && !length($err // '');
    require Scalar::Util;
    if (Scalar::Util::blessed($err)) {
        my $message = eval { $err->can('message') ? $err->message : "$err" } // "$err";
        fail(ref $err, $message, $trace);
    }
    fail('Error', ref $err ? eval { json()->encode($err) } // "$err" : "$err", $trace);
}

sub json {
    require JSON::PP;
    return JSON::PP->new->utf8->allow_nonref->convert_blessed;
}

# Report an error: a summary line to the log, the error object as the response.
sub fail {
    my ($type, $message, $stack) = @_;
    $stack = [ @{ $stack // [] } ];
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
    respond(json()->encode($error), 70);
}

sub respond {
    my ($bytes, $status) = @_;
    print {$RESPONSE} $bytes or die "runner: cannot write the response: $!\n";
    close $RESPONSE or die "runner: cannot write the response: $!\n";
    exit $status;
}
