#!/usr/bin/env node
// Proves the ccall checker can fail: the package checks clean against the real header, and each
// mutation below (a renamed symbol, a changed argument list, a changed type, a broken file, a
// wrong callback) is caught. Prints "selftest: N passed, M failed".
'use strict';

const fs = require('fs');
const path = require('path');
const { check } = require('./ccall_check.js');

const pkg = path.resolve(__dirname, '..');
const headerPath = path.resolve(pkg, '..', 'include', 'natsbridge.h');
const header = fs.readFileSync(headerPath, 'utf8');
const files = ['src/NATSBridge.jl', 'test/runtests.jl'].map((f) => ({
  file: f,
  text: fs.readFileSync(path.join(pkg, f), 'utf8'),
}));
const source = files[0].text;

let passed = 0;
let failed = 0;
function expect(name, ok, detail) {
  if (ok) passed++;
  else {
    failed++;
    console.error(`selftest FAIL: ${name}${detail ? `: ${detail}` : ''}`);
  }
}

function replaceOnce(text, from, to, what) {
  if (!text.includes(from)) throw new Error(`selftest: cannot find ${JSON.stringify(from)} (${what})`);
  return text.replace(from, to);
}

// Runs the checker on mutated inputs and expects a problem matching `pattern`.
function expectProblem(name, { headerText = header, jl = source }, pattern) {
  const result = check(headerText, [{ file: 'src/NATSBridge.jl', text: jl }]);
  const hit = result.problems.some((p) => pattern.test(p));
  expect(name, hit, `problems: ${JSON.stringify(result.problems)}`);
}

// 0. The real package is clean, and has something to check.
const clean = check(header, files);
expect('package matches the header', clean.problems.length === 0, JSON.stringify(clean.problems));
expect('package has ccalls to check', clean.calls >= 20, `${clean.calls} ccalls`);
expect('package has @cfunctions to check', clean.callbacks === 2, `${clean.callbacks} @cfunctions`);

// 1. A symbol renamed in the header (the library changed, the package did not).
expectProblem('renamed symbol in the header', {
  headerText: replaceOnce(header, 'natsbridge_client_send(', 'natsbridge_client_publish(', 'rename'),
}, /calls natsbridge_client_send, which include\/natsbridge\.h does not declare/);

// 2. A symbol renamed in the package.
expectProblem('renamed symbol in a ccall', {
  jl: replaceOnce(source, '(:natsbridge_message_add,', '(:natsbridge_message_append,', 'rename'),
}, /calls natsbridge_message_append/);

// 3. An argument added to a function in the header.
expectProblem('argument added in the header', {
  headerText: replaceOnce(header, 'natsbridge_status natsbridge_client_close(const natsbridge_client *client,',
    'natsbridge_status natsbridge_client_close(const natsbridge_client *client, int32_t mode,', 'add arg'),
}, /natsbridge_client_close takes 3 arguments/);

// 4. An argument dropped from a ccall's type tuple (and its value).
expectProblem('argument dropped in a ccall', {
  jl: replaceOnce(source, `(:natsbridge_client_close, libnatsbridge), Cint, (Ptr{Cvoid}, UInt64),
                                    client.ptr, milliseconds(timeout))`,
    '(:natsbridge_client_close, libnatsbridge), Cint, (Ptr{Cvoid},), client.ptr)', 'drop arg'),
}, /natsbridge_client_close takes 2 arguments/);

// 5. A type changed: size_t declared as Cint.
expectProblem('argument type changed', {
  jl: replaceOnce(source, '(Ptr{Cvoid}, Cstring, Cstring, Ptr{UInt8}, Csize_t)',
    '(Ptr{Cvoid}, Cstring, Cstring, Ptr{UInt8}, Cint)', 'type'),
}, /natsbridge_message_add argument 5 is size_t, declared here as Cint/);

// 6. A return type changed.
expectProblem('return type changed', {
  jl: replaceOnce(source, 'ccall((:natsbridge_client_free, libnatsbridge), Cvoid,',
    'ccall((:natsbridge_client_free, libnatsbridge), Cint,', 'ret'),
}, /natsbridge_client_free returns void, declared here as Cint/);

// 7. More values than argument types.
expectProblem('values and types disagree', {
  jl: replaceOnce(source, 'check(ccall((:natsbridge_message_new, libnatsbridge), Cint, (Ref{Ptr{Cvoid}},), out))',
    'check(ccall((:natsbridge_message_new, libnatsbridge), Cint, (Ref{Ptr{Cvoid}},), out, out))', 'values'),
}, /passed 2 values for 1 argument types/);

// 8. The @threadcall is checked too.
expectProblem('@threadcall argument list changed', {
  jl: replaceOnce(source, `(:natsbridge_subscription_next, libnatsbridge), Cint,
                    (Ptr{Cvoid}, UInt64, Ptr{Ptr{Cvoid}}), sub.ptr, timeout_ms, out)`,
    '(:natsbridge_subscription_next, libnatsbridge), Cint, (Ptr{Cvoid}, Cint, Ptr{Ptr{Cvoid}}), sub.ptr, Cint(timeout_ms), out)',
    'threadcall'),
}, /natsbridge_subscription_next argument 2 is uint64_t, declared here as Cint/);

// 9. A callback signature that matches no typedef: the download handler without its retry
// arguments, or with max_retries as the wrong integer type.
expectProblem('@cfunction signature changed', {
  jl: replaceOnce(source, '(Ptr{Cvoid}, Cstring, UInt32, UInt64, UInt64, Cstring, Ptr{Cvoid})',
    '(Ptr{Cvoid}, Cstring, UInt64, Cstring, Ptr{Cvoid})', 'cb'),
}, /@cfunction .* matches no callback typedef/);
expectProblem('@cfunction argument type changed', {
  jl: replaceOnce(source, '(Ptr{Cvoid}, Cstring, UInt32, UInt64, UInt64, Cstring, Ptr{Cvoid})',
    '(Ptr{Cvoid}, Cstring, UInt64, UInt64, UInt64, Cstring, Ptr{Cvoid})', 'cb type'),
}, /@cfunction .* matches no callback typedef/);

// 12. The one-call functions: an argument dropped from natsbridge_smartsend's ccall.
expectProblem('one-call ccall argument dropped', {
  jl: replaceOnce(source, `(Cstring, Ptr{Cvoid}, Ptr{UInt8}, Ptr{UInt8}, Ref{Ptr{Cchar}}),
                                         String(subject), message.ptr, c_or_null(broker_url),
                                         c_or_null(fileserver_url), json)`, `(Cstring, Ptr{Cvoid}, Ptr{UInt8}, Ref{Ptr{Cchar}}),
                                         String(subject), message.ptr, c_or_null(broker_url), json)`, 'one-call'),
}, /natsbridge_smartsend takes 5 arguments/);

// 13. A return type that is a pointer to pointers (the option names) must be declared as one.
expectProblem('pointer-to-pointer return type changed', {
  jl: replaceOnce(source, '(:natsbridge_option_names, libnatsbridge), Ptr{Ptr{Cchar}}, ()',
    '(:natsbridge_option_names, libnatsbridge), Ptr{Cchar}, ()', 'ret'),
}, /natsbridge_option_names returns const char \*const \*, declared here as Ptr\{Cchar\}/);

// 10. A syntax error is reported with its line.
expectProblem('syntax error', {
  jl: replaceOnce(source, 'function check(status::Cint)', 'function check(status::Cint', 'syntax'),
}, /syntax error/);

// 11. An @ccall (macro form) is checked like ccall.
expectProblem('@ccall form is checked', {
  jl: source + '\nf(p) = @ccall libnatsbridge.natsbridge_client_flush(p::Ptr{Cvoid})::Cint\n',
}, /natsbridge_client_flush takes 2 arguments/);
{
  const ok = check(header, [{ file: 'x.jl', text: 'f(p) = @ccall libnatsbridge.natsbridge_client_flush(p::Ptr{Cvoid}, 5::UInt64)::Cint\n' }]);
  expect('a correct @ccall passes', ok.problems.length === 0 && ok.calls === 1, JSON.stringify(ok));
}

// 14. A signed 64-bit argument (the sweep's min_age_ms) is Int64, not UInt64.
expectProblem('int64_t argument declared unsigned', {
  jl: replaceOnce(source, '(Ptr{Cvoid}, Cstring, Cint, Int64, UInt64, Ref{Ptr{Cchar}})',
    '(Ptr{Cvoid}, Cstring, Cint, UInt64, UInt64, Ref{Ptr{Cchar}})', 'i64'),
}, /natsbridge_client_sweep_links argument 4 is int64_t, declared here as UInt64/);

// 16. A @threadcall out-param declared Ref{...}: right for ccall, an ArgumentError in
// @threadcall (isbits argument types only).
expectProblem('@threadcall with a Ref argument type', {
  jl: replaceOnce(source, '(Ptr{Cvoid}, UInt64, Ptr{Ptr{Cvoid}}), consumer.ptr, timeout_ms, out)',
    '(Ptr{Cvoid}, UInt64, Ref{Ptr{Cvoid}}), consumer.ptr, timeout_ms, out)', 'threadcall Ref'),
}, /@threadcall natsbridge_consumer_next argument 3 is declared Ref\{Ptr\{Cvoid\}\}: @threadcall takes isbits/);

// 17. A uint64_t out-param (a link's bytes saved) declared as another width.
expectProblem('uint64_t * declared as a pointer to another width', {
  jl: replaceOnce(source, '(Ptr{Cvoid}, Cstring, Ptr{UInt64}),', '(Ptr{Cvoid}, Cstring, Ptr{Csize_t}),', 'u64*'),
}, /natsbridge_link_save argument 3 is uint64_t \*, declared here as Ptr\{Csize_t\}/);

// 15. The package is over 32 KiB (node-tree-sitter's default read buffer): a file twice that
// still parses, and its ccalls are still found.
{
  const big = source + '\n' + '# padding\n'.repeat(Math.ceil(source.length / 10));
  const result = check(header, [{ file: 'big.jl', text: big }]);
  expect('a file over 64 KiB parses', big.length > 64 * 1024 && result.problems.length === 0 && result.calls === clean.calls -
    check(header, [files[1]]).calls, JSON.stringify(result.problems));
}

console.log(`selftest: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
