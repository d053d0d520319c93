#!/usr/bin/env node
// Checks NATSBridge.jl without Julia: every .jl file must parse (tree-sitter-julia), and every
// `ccall`, `@ccall`, `@threadcall` into libnatsbridge must name a function of the repository's
// include/natsbridge.h with the same number of arguments and C-compatible Julia
// types (return type included); every `@cfunction` must match one of the header's callback
// typedefs; a `@threadcall` must declare no `Ref{...}` type (Julia's @threadcall takes isbits
// argument types only and throws ArgumentError at the call: an out-param is `Ptr{...}`, passed a
// Ref). Usage: ccall_check.js [--header H] [files or dirs...]  (default: the package).
'use strict';

const fs = require('fs');
const path = require('path');
const Parser = require('tree-sitter');
const Julia = require('tree-sitter-julia');

// ---- the header ------------------------------------------------------------------------------

function stripComments(text) {
  return text.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/\/\/[^\n]*/g, ' ');
}

function splitParams(list) {
  const trimmed = list.trim();
  if (trimmed === '' || trimmed === 'void') return [];
  return trimmed.split(',').map((p) => {
    const t = p.trim().replace(/\s+/g, ' ');
    // Drop the parameter name: the last identifier, when something precedes it.
    const m = t.match(/^(.*?[\s*])([A-Za-z_]\w*)$/);
    return m && m[1].replace(/[\s]/g, '') !== '' && !/^(const|struct|enum)?$/.test(m[1].trim()) ? m[1].trim() : t;
  });
}

function parseHeader(text) {
  // Preprocessor lines go; `extern "C" {` then ends in '{' like a block.
  const src = stripComments(text).replace(/^\s*#.*$/gm, ' ').replace(/\s+/g, ' ');
  const enums = new Set();
  const handles = new Set();
  const callbacks = new Map();
  for (const m of src.matchAll(/typedef enum(?: \w+)? ?\{[^}]*\} ?(\w+) ?;/g)) enums.add(m[1]);
  for (const m of src.matchAll(/typedef struct (\w+) (\w+) ?;/g)) handles.add(m[2]);
  for (const m of src.matchAll(/typedef ([\w\s*]+?) ?\( ?\* ?(\w+) ?\) ?\(([^()]*)\) ?;/g)) {
    callbacks.set(m[2], { ret: m[1].trim(), params: splitParams(m[3]) });
  }
  const functions = new Map();
  // Return types: `T`, `const T *`, and pointers to const pointers (`const char *const *`).
  for (const m of src.matchAll(/(?<=^|[;{}]) ?((?:const )?[\w]+(?: [\w]+)?(?: ?\*(?: ?const\b)?)*) ?\b(natsbridge_\w+) ?\(([^()]*)\) ?;/g)) {
    functions.set(m[2], { ret: m[1].trim(), params: splitParams(m[3]) });
  }
  return { enums, handles, callbacks, functions };
}

// A C type's kind: i32, i64, u32, u64, usize, char, u8, void, handle, fnptr, then one '*' per level.
function cKind(ctype, header) {
  const stars = (ctype.match(/\*/g) || []).length;
  const base = ctype.replace(/\*/g, ' ').replace(/\b(const|struct|enum)\b/g, ' ').trim().replace(/\s+/g, ' ');
  let kind;
  if (header.enums.has(base) || base === 'int32_t' || base === 'int') kind = 'i32';
  else if (base === 'int64_t') kind = 'i64';
  else if (base === 'uint32_t') kind = 'u32';
  else if (base === 'uint64_t') kind = 'u64';
  else if (base === 'size_t') kind = 'usize';
  else if (base === 'char') kind = 'char';
  else if (base === 'uint8_t') kind = 'u8';
  else if (base === 'void') kind = 'void';
  else if (header.handles.has(base)) kind = 'handle';
  else if (header.callbacks.has(base)) kind = 'fnptr';
  else kind = `unknown(${base})`;
  return kind + '*'.repeat(stars);
}

// Julia types a C kind may be declared as in a ccall.
const ACCEPTED = {
  i32: ['Cint', 'Int32'],
  i64: ['Int64', 'Clonglong'],
  u32: ['UInt32', 'Cuint'],
  u64: ['UInt64', 'Culonglong'],
  usize: ['Csize_t', 'UInt', 'UInt64'],
  void: ['Cvoid', 'Nothing'],
  fnptr: ['Ptr{Cvoid}', 'Ptr{Nothing}'],
  'char*': ['Cstring', 'Ptr{Cchar}', 'Ptr{UInt8}'],
  'char**': ['Ref{Ptr{Cchar}}', 'Ptr{Ptr{Cchar}}', 'Ref{Ptr{UInt8}}', 'Ptr{Ptr{UInt8}}', 'Ref{Cstring}'],
  'u8*': ['Ptr{UInt8}'],
  'u8**': ['Ref{Ptr{UInt8}}', 'Ptr{Ptr{UInt8}}'],
  'usize*': ['Ref{Csize_t}', 'Ptr{Csize_t}'],
  'u64*': ['Ref{UInt64}', 'Ptr{UInt64}'],
  'void*': ['Ptr{Cvoid}', 'Ptr{Nothing}'],
  'handle*': ['Ptr{Cvoid}', 'Ptr{Nothing}'],
  'handle**': ['Ref{Ptr{Cvoid}}', 'Ptr{Ptr{Cvoid}}'],
};

function compatible(ctype, juliaType, header) {
  const accepted = ACCEPTED[cKind(ctype, header)] || [];
  return accepted.includes(juliaType.replace(/\s+/g, ''));
}

// ---- the Julia sources -----------------------------------------------------------------------

const parser = new Parser();
parser.setLanguage(Julia);

const named = (node) => node.namedChildren.filter((c) => !/comment/.test(c.type));
const where = (file, node) => `${file}:${node.startPosition.row + 1}`;

function tupleItems(node) {
  if (node.type !== 'tuple_expression') return null;
  return named(node);
}

// `(:sym, lib)` or `(:sym, "lib")` -> "sym".
function symbolOf(node) {
  const items = tupleItems(node);
  if (!items || items.length !== 2) return null;
  const sym = items[0];
  if (sym.type === 'quote_expression') return sym.text.replace(/^:/, '');
  if (sym.type === 'string_literal') return sym.text.replace(/^"|"$/g, '');
  return null;
}

// Every foreign call in a tree: {kind, symbol, ret, args[], values, node}.
function collectCalls(root, file, problems) {
  const calls = [];
  const callbacks = [];
  const visit = (node) => {
    if (node.type === 'call_expression' && named(node)[0]?.text === 'ccall') {
      const args = named(node).find((c) => c.type === 'argument_list');
      calls.push(tupleForm('ccall', args, node));
    } else if (node.type === 'macrocall_expression') {
      const macro = named(node)[0]?.text;
      const args = named(node).find((c) => c.type === 'argument_list' || c.type === 'macro_argument_list');
      if (macro === '@threadcall') calls.push(tupleForm('@threadcall', args, node));
      else if (macro === '@ccall') calls.push(macroForm(args, node));
      else if (macro === '@cfunction') callbacks.push(cfunctionForm(args, node));
    }
    for (const child of node.namedChildren) visit(child);
  };
  const tupleForm = (kind, args, node) => {
    const items = args ? named(args) : [];
    const types = items[2] ? tupleItems(items[2]) : null;
    if (!items[0] || !items[1] || !types) {
      problems.push(`${where(file, node)}: ${kind} needs (:symbol, lib), a return type and a tuple of argument types`);
      return null;
    }
    return {
      kind, node,
      symbol: symbolOf(items[0]),
      ret: items[1].text,
      args: types.map((t) => t.text),
      values: items.length - 3,
    };
  };
  const macroForm = (args, node) => {
    // @ccall lib.sym(v::T, ...)::R
    const typed = args ? named(args)[0] : null;
    const call = typed && typed.type === 'typed_expression' ? named(typed)[0] : null;
    if (!call || call.type !== 'call_expression') {
      problems.push(`${where(file, node)}: @ccall must be written lib.function(arg::Type, ...)::ReturnType`);
      return null;
    }
    const callee = named(call)[0];
    const symbol = callee.type === 'field_expression' ? named(callee).at(-1).text : callee.text;
    const argList = named(call).find((c) => c.type === 'argument_list');
    const params = argList ? named(argList) : [];
    const untyped = params.filter((p) => p.type !== 'typed_expression');
    if (untyped.length) problems.push(`${where(file, node)}: @ccall argument ${untyped[0].text} has no ::Type`);
    return {
      kind: '@ccall', node, symbol,
      ret: named(typed).at(-1).text,
      args: params.filter((p) => p.type === 'typed_expression').map((p) => named(p).at(-1).text),
      values: params.length,
    };
  };
  const cfunctionForm = (args, node) => {
    const items = args ? named(args) : [];
    const types = items[2] ? tupleItems(items[2]) : null;
    if (!items[1] || !types) {
      problems.push(`${where(file, node)}: @cfunction needs a function, a return type and a tuple of argument types`);
      return null;
    }
    return { node, ret: items[1].text, args: types.map((t) => t.text) };
  };
  visit(root);
  return { calls: calls.filter(Boolean), callbacks: callbacks.filter(Boolean) };
}

function syntaxErrors(root, file) {
  const errors = [];
  const visit = (node) => {
    if (node.type === 'ERROR' || node.isMissing) {
      errors.push(`${where(file, node)}: syntax error near ${JSON.stringify(node.text.slice(0, 40))}`);
      return;
    }
    for (const child of node.children) visit(child);
  };
  visit(root);
  if (root.hasError && errors.length === 0) errors.push(`${file}: syntax error`);
  return errors;
}

/**
 * Checks sources against a header. `sources` is [{file, text}]. Returns {problems, calls,
 * callbacks, files}: `problems` is empty when everything matches.
 */
function check(headerText, sources) {
  const header = parseHeader(headerText);
  const problems = [];
  let callCount = 0;
  let callbackCount = 0;
  if (header.functions.size === 0) problems.push('the header declares no natsbridge_ functions');
  for (const { file, text } of sources) {
    // node-tree-sitter reads a string through a buffer of `bufferSize` (default 32 KiB) and
    // fails with "Invalid argument" on a longer file: size it to the text.
    const tree = parser.parse(text, null, { bufferSize: Math.max(32 * 1024, 2 * text.length + 1) });
    problems.push(...syntaxErrors(tree.rootNode, file));
    const { calls, callbacks } = collectCalls(tree.rootNode, file, problems);
    for (const call of calls) {
      callCount++;
      const at = where(file, call.node);
      if (!call.symbol) {
        problems.push(`${at}: ${call.kind} names no literal symbol`);
        continue;
      }
      const fn = header.functions.get(call.symbol);
      if (!fn) {
        problems.push(`${at}: ${call.kind} calls ${call.symbol}, which include/natsbridge.h does not declare`);
        continue;
      }
      if (!compatible(fn.ret, call.ret, header)) {
        problems.push(`${at}: ${call.symbol} returns ${fn.ret}, declared here as ${call.ret}`);
      }
      if (fn.params.length !== call.args.length) {
        problems.push(`${at}: ${call.symbol} takes ${fn.params.length} arguments (${fn.params.join(', ')}), ` +
          `declared here with ${call.args.length} (${call.args.join(', ')})`);
        continue;
      }
      fn.params.forEach((ctype, i) => {
        if (!compatible(ctype, call.args[i], header)) {
          problems.push(`${at}: ${call.symbol} argument ${i + 1} is ${ctype}, declared here as ${call.args[i]}`);
        }
      });
      if (call.values !== call.args.length) {
        problems.push(`${at}: ${call.symbol} is passed ${call.values} values for ${call.args.length} argument types`);
      }
      if (call.kind === '@threadcall') {
        [call.ret, ...call.args].forEach((t, i) => {
          if (/^Ref\s*\{/.test(t.trim())) {
            problems.push(`${at}: @threadcall ${call.symbol} ${i === 0 ? 'return type' : `argument ${i}`} is ` +
              `declared ${t}: @threadcall takes isbits types only (declare Ptr{...} and pass the Ref)`);
          }
        });
      }
    }
    for (const cb of callbacks) {
      callbackCount++;
      const fits = [...header.callbacks.values()].some((t) =>
        t.params.length === cb.args.length && compatible(t.ret, cb.ret, header) &&
        t.params.every((ctype, i) => compatible(ctype, cb.args[i], header)));
      if (!fits) {
        problems.push(`${where(file, cb.node)}: @cfunction (${cb.args.join(', ')})::${cb.ret} matches no callback ` +
          `typedef of the header (${[...header.callbacks.keys()].join(', ')})`);
      }
    }
  }
  return { problems, calls: callCount, callbacks: callbackCount, files: sources.length };
}

function juliaFiles(target) {
  const stat = fs.statSync(target);
  if (stat.isFile()) return [target];
  return fs.readdirSync(target, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(target, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : juliaFiles(p);
    return e.name.endsWith('.jl') ? [p] : [];
  });
}

function main(argv) {
  const pkg = path.resolve(__dirname, '..');
  let headerPath = path.resolve(pkg, '..', 'include', 'natsbridge.h');
  const targets = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--header') headerPath = argv[++i];
    else targets.push(argv[i]);
  }
  if (targets.length === 0) targets.push(pkg);
  const files = targets.flatMap(juliaFiles).sort();
  const sources = files.map((file) => ({ file: path.relative(process.cwd(), file), text: fs.readFileSync(file, 'utf8') }));
  const result = check(fs.readFileSync(headerPath, 'utf8'), sources);
  for (const p of result.problems) console.error(`ccall_check: ${p}`);
  if (result.calls === 0) {
    console.error('ccall_check: no ccall found (the checker would prove nothing)');
    return 1;
  }
  console.log(`ccall_check: ${result.files} files parsed, ${result.calls} ccalls and ${result.callbacks} ` +
    `@cfunctions checked against ${path.basename(headerPath)}: ${result.problems.length} problems`);
  return result.problems.length === 0 ? 0 : 1;
}

module.exports = { check, parseHeader };

if (require.main === module) process.exit(main(process.argv.slice(2)));
