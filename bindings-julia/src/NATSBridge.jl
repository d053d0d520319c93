"""
    NATSBridge

Julia front end of NATSBridge: `ccall`s into libnatsbridge (the C API declared in the
repository's include/natsbridge.h). The protocol, I/O, options, one-call connections and error
codes are the Rust core's; this module converts Julia values to the bytes the wire carries and
back, and seconds to the C API's milliseconds.

The library is `ENV["NATSBRIDGE_LIB"]` if set, else `deps/lib/libnatsbridge.so` beside this
package (`make install PREFIX=<package>/deps` in bindings-c puts it there).
"""
module NATSBridge

# The library path is read from the environment at load time, so the module is not precompiled
# (a precompiled constant would keep the path of the machine that precompiled it).
__precompile__(false)

using Arrow
using DataFrames
using JSON3
using Libdl
using Tables

export smartsend, smartreceive, connect, subscribe, next, request, reply, reply_error, NATSBridgeError, Client,
       Subscription, add_stream, consume, ack, nak, in_progress, term, sweep_links, Consumer, Delivery, FileBytes,
       metrics, next_streamed, LinkStream, eachchunk, save

function _library_path()
    path = get(ENV, "NATSBRIDGE_LIB", "")
    isempty(path) || return path
    return joinpath(@__DIR__, "..", "deps", "lib", "libnatsbridge." * Libdl.dlext)
end

const libnatsbridge = _library_path()

# ---- errors -----------------------------------------------------------------------------------

"""
    NATSBridgeError(code, message, correlation_id)

A failed call. `code` is the core's stable code as a Symbol (`:TIMEOUT`, `:INVALID_PAYLOAD_TYPE`,
`:DOWNLOAD_FAILED`, ..., `:INVALID_ARGUMENT` for a caller mistake), or `:INTERNAL_ERROR` for a
bug caught at the C boundary.
"""
struct NATSBridgeError <: Exception
    code::Symbol
    message::String
    correlation_id::String
end

Base.showerror(io::IO, e::NATSBridgeError) = print(io, "NATSBridgeError(", e.code, "): ", e.message)

invalid_argument(message) = NATSBridgeError(:INVALID_ARGUMENT, "INVALID_ARGUMENT: " * message, "")

status_name(status::Cint) =
    Symbol(unsafe_string(ccall((:natsbridge_status_name, libnatsbridge), Cstring, (Cint,), status)))

function check(status::Cint)
    status == 0 && return nothing
    message = unsafe_string(ccall((:natsbridge_last_error, libnatsbridge), Cstring, ()))
    cid = unsafe_string(ccall((:natsbridge_last_error_correlation_id, libnatsbridge), Cstring, ()))
    throw(NATSBridgeError(status_name(status), message, cid))
end

"""The C status of a core error code (`:TIMEOUT` or "TIMEOUT"): the library names them."""
function status_of(code)
    status = Cint(1)
    while (name = status_name(status)) !== :UNKNOWN
        name === Symbol(code) && return status
        status += Cint(1)
    end
    throw(invalid_argument("$(repr(code)) is not an error code"))
end

take_string!(ptr::Ptr{Cchar}) =
    try
        unsafe_string(ptr)
    finally
        ccall((:natsbridge_string_free, libnatsbridge), Cvoid, (Ptr{Cchar},), ptr)
    end

# A string argument that may be absent (NULL); ccall keeps the String alive for the call.
c_or_null(s) = s === nothing ? C_NULL : String(s)

# ---- the seeds' handlers: fileserver_upload_handler / fileserver_download_handler --------------

"""What a client's or message's handlers need while C holds `pointer_from_objref` of it."""
mutable struct Handlers
    upload::Union{Nothing,Function}
    download::Union{Nothing,Function}
end

buffer_append(buffer::Ptr{Cvoid}, bytes::AbstractVector{UInt8}) =
    ccall((:natsbridge_buffer_append, libnatsbridge), Cint, (Ptr{Cvoid}, Ptr{UInt8}, Csize_t),
          buffer, Vector{UInt8}(bytes), length(bytes))
buffer_append(buffer::Ptr{Cvoid}, text::AbstractString) = buffer_append(buffer, Vector{UInt8}(codeunits(String(text))))
buffer_append(buffer::Ptr{Cvoid}, io::IO) = buffer_append(buffer, read(io))

# An upload handler answers with the URL or the seeds' reply Dict ("url", "status"); the
# library reads either (a Dict goes as its JSON).
upload_answer(result::AbstractString) = String(result)
upload_answer(result) = JSON3.write(result)

# Handler failures go back to C as a message; nothing is thrown across the boundary.
function upload_trampoline(user_data::Ptr{Cvoid}, fileserver_url::Cstring, dataname::Cstring,
                           data::Ptr{UInt8}, len::Csize_t, url_out::Ptr{Cvoid})::Cint
    try
        handlers = unsafe_pointer_to_objref(user_data)::Handlers
        bytes = copy(unsafe_wrap(Array, data, len))
        result = handlers.upload(unsafe_string(fileserver_url), unsafe_string(dataname), bytes)
        return buffer_append(url_out, upload_answer(result)) == 0 ? Cint(0) : Cint(1)
    catch e
        buffer_append(url_out, sprint(showerror, e))
        return Cint(1)
    end
end

function download_trampoline(user_data::Ptr{Cvoid}, url::Cstring, max_retries::UInt32, base_delay_ms::UInt64,
                             max_delay_ms::UInt64, correlation_id::Cstring, bytes_out::Ptr{Cvoid})::Cint
    try
        handlers = unsafe_pointer_to_objref(user_data)::Handlers
        bytes = handlers.download(unsafe_string(url), Int(max_retries), Int(base_delay_ms), Int(max_delay_ms),
                                  unsafe_string(correlation_id))
        return buffer_append(bytes_out, bytes) == 0 ? Cint(0) : Cint(1)
    catch e
        buffer_append(bytes_out, sprint(showerror, e))
        return Cint(1)
    end
end

upload_cfunction() = @cfunction(upload_trampoline, Cint, (Ptr{Cvoid}, Cstring, Cstring, Ptr{UInt8}, Csize_t, Ptr{Cvoid}))
download_cfunction() = @cfunction(download_trampoline, Cint,
                                  (Ptr{Cvoid}, Cstring, UInt32, UInt64, UInt64, Cstring, Ptr{Cvoid}))

# ---- client -----------------------------------------------------------------------------------

"""A connected client (a NATS connection plus link stores). Safe to share between tasks."""
mutable struct Client
    ptr::Ptr{Cvoid}
    handlers::Union{Nothing,Handlers}
    function Client(ptr::Ptr{Cvoid}, handlers)
        client = new(ptr, handlers)
        finalizer(client) do c
            ccall((:natsbridge_client_free, libnatsbridge), Cvoid, (Ptr{Cvoid},), c.ptr)
            c.ptr = C_NULL
        end
        return client
    end
end

const OPTION_NAMES = Set{String}()
const STREAM_OPTION_NAMES = Set{String}()
const CONSUME_OPTION_NAMES = Set{String}()

"""Fills `set` from a NULL-terminated array of C strings (static in the library)."""
function read_names!(set::Set{String}, names::Ptr{Ptr{Cchar}})
    i = 1
    while (name = unsafe_load(names, i)) != C_NULL
        push!(set, unsafe_string(name))
        i += 1
    end
    return set
end

"""The C API's option keys (a duration's ends in `_ms`), read from the library once."""
option_names() = isempty(OPTION_NAMES) ?
    read_names!(OPTION_NAMES, ccall((:natsbridge_option_names, libnatsbridge), Ptr{Ptr{Cchar}}, ())) : OPTION_NAMES

"""The keys of `add_stream`'s options in the C API, read from the library once."""
stream_option_names() = isempty(STREAM_OPTION_NAMES) ?
    read_names!(STREAM_OPTION_NAMES, ccall((:natsbridge_stream_option_names, libnatsbridge), Ptr{Ptr{Cchar}}, ())) :
    STREAM_OPTION_NAMES

"""The keys of `consume`'s options in the C API, read from the library once."""
consume_option_names() = isempty(CONSUME_OPTION_NAMES) ?
    read_names!(CONSUME_OPTION_NAMES, ccall((:natsbridge_consume_option_names, libnatsbridge), Ptr{Ptr{Cchar}}, ())) :
    CONSUME_OPTION_NAMES

option_text(value::Bool) = value ? "true" : "false"
option_text(value) = string(value)

"""Sets one option given in Julia's spelling (durations in seconds) on a C options object."""
function set_option(opts::Ptr{Cvoid}, key::Symbol, value)
    value === nothing && return nothing
    name = String(key)
    endswith(name, "_ms") && throw(invalid_argument("option $(name): Julia takes durations in seconds, " *
                                                    "as $(chop(name; tail=3))"))
    if "$(name)_ms" in option_names()
        name = "$(name)_ms"
        value = value isa Real ? 1000 * value : value
    end
    # servers and allowed_origins: the library adds each call's items to the list.
    for item in (value isa Union{AbstractVector,Tuple} ? value : (value,))
        check(ccall((:natsbridge_connect_options_set, libnatsbridge), Cint, (Ptr{Cvoid}, Cstring, Cstring),
                    opts, name, option_text(item)))
    end
end

"""
    connect(url=nothing; options...) -> Client

Connects to NATS (`url`, else the `servers` option, else `ENV["NATS_URL"]`, else
nats://localhost:4222). `options` are the connection options of the one vocabulary in
snake_case, durations in seconds (`name`, `user`, `password`, `token`, `tls_required`,
`max_reconnect_attempts`, `connect_timeout`, `size_threshold`, `fileserver_url`,
`allowed_origins`, `max_retries`, `base_delay`, `max_delay`, `object_store_replicas`, `jetstream`
(sends publish durably to the stream capturing their subject), ...), plus the seeds' handlers
`fileserver_upload_handler(fileserver_url, dataname, bytes) -> Dict("url" => ...) or a URL` and
`fileserver_download_handler(url, max_retries, base_delay_ms, max_delay_ms, correlation_id) ->
bytes`; the download handler serves the origin of `fileserver_url` and `allowed_origins`.
"""
function connect(url::Union{Nothing,AbstractString}=nothing; fileserver_upload_handler=nothing,
                 fileserver_download_handler=nothing, options...)
    opts = Ref{Ptr{Cvoid}}(C_NULL)
    check(ccall((:natsbridge_connect_options_new, libnatsbridge), Cint, (Ref{Ptr{Cvoid}},), opts))
    handlers = nothing
    try
        for (key, value) in options
            set_option(opts[], key, value)
        end
        if fileserver_upload_handler !== nothing || fileserver_download_handler !== nothing
            handlers = Handlers(fileserver_upload_handler, fileserver_download_handler)
            up = fileserver_upload_handler === nothing ? C_NULL : upload_cfunction()
            down = fileserver_download_handler === nothing ? C_NULL : download_cfunction()
            check(ccall((:natsbridge_connect_options_set_handlers, libnatsbridge), Cint,
                        (Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Cvoid}), opts[], up, down,
                        pointer_from_objref(handlers)))
        end
        out = Ref{Ptr{Cvoid}}(C_NULL)
        check(ccall((:natsbridge_client_connect, libnatsbridge), Cint, (Ptr{UInt8}, Ptr{Cvoid}, Ref{Ptr{Cvoid}}),
                    c_or_null(url), opts[], out))
        return Client(out[], handlers)
    finally
        ccall((:natsbridge_connect_options_free, libnatsbridge), Cvoid, (Ptr{Cvoid},), opts[])
    end
end

milliseconds(seconds::Real) = round(UInt64, 1000 * seconds)

"""Drains and closes the connection, waiting up to `timeout` seconds."""
function Base.close(client::Client; timeout::Real=10.0)
    client.ptr == C_NULL && return nothing
    GC.@preserve client check(ccall((:natsbridge_client_close, libnatsbridge), Cint, (Ptr{Cvoid}, UInt64),
                                    client.ptr, milliseconds(timeout)))
    return nothing
end

"""Waits up to `timeout` seconds until everything sent is written to the server."""
function Base.flush(client::Client; timeout::Real=10.0)
    GC.@preserve client check(ccall((:natsbridge_client_flush, libnatsbridge), Cint, (Ptr{Cvoid}, UInt64),
                                    client.ptr, milliseconds(timeout)))
    return nothing
end

"""What `client` sent and received since it connected (spec/PROTOCOL.md §13.3): a Dict of
`messages_sent`, `messages_received`, `payloads_sent`, `payloads_received`, `bytes_sent`,
`bytes_received` (each `Dict("direct" => n, "link" => n)`), `download_retries`,
`checksum_failures`, `downloads` and `download_time_ms`."""
function metrics(client::Client)
    json = Ref{Ptr{Cchar}}(C_NULL)
    GC.@preserve client check(ccall((:natsbridge_client_metrics, libnatsbridge), Cint,
                                    (Ptr{Cvoid}, Ref{Ptr{Cchar}}), client.ptr, json))
    return parse_json(take_string!(json[]))
end

# ---- payload conversion -----------------------------------------------------------------------

# JSON as plain Julia values: objects as Dict{String,Any} (JSON3's `copy` would key them by
# Symbol), arrays as Vector{Any}.
plain(x::JSON3.Object) = Dict{String,Any}(String(k) => plain(v) for (k, v) in x)
plain(x::JSON3.Array) = Any[plain(v) for v in x]
plain(x) = x
parse_json(text) = plain(JSON3.read(text))

const BYTE_TYPES = ("image", "audio", "video", "binary")

"""The serialized bytes of a payload value (text UTF-8, JSON, Arrow IPC stream, raw bytes)."""
function serialize(data, payload_type::AbstractString)::Vector{UInt8}
    if payload_type == "text"
        return Vector{UInt8}(codeunits(String(data)))
    elseif payload_type == "dictionary"
        return Vector{UInt8}(codeunits(JSON3.write(data)))
    elseif payload_type == "jsontable"
        rows = Tables.istable(data) ? Tables.rowtable(data) : data
        return Vector{UInt8}(codeunits(JSON3.write(rows)))
    elseif payload_type == "arrowtable"
        data isa AbstractVector{UInt8} && return Vector{UInt8}(data)
        io = IOBuffer()
        Arrow.write(io, data)  # the IPC stream format (file=false is the default for an IO)
        return take!(io)
    elseif payload_type in BYTE_TYPES
        data isa IO && return read(data)
        return Vector{UInt8}(data)
    end
    # Unknown types are the library's to refuse (INVALID_PAYLOAD_TYPE).
    return data isa AbstractVector{UInt8} ? Vector{UInt8}(data) : Vector{UInt8}(codeunits(string(data)))
end

"""A received payload's bytes as a Julia value: String, Dict/Vector, DataFrame, Vector{UInt8}."""
function deserialize(bytes::Vector{UInt8}, payload_type::AbstractString)
    if payload_type == "text"
        return String(bytes)
    elseif payload_type == "dictionary" || payload_type == "jsontable"
        return parse_json(bytes)
    elseif payload_type == "arrowtable"
        return DataFrame(Arrow.Table(bytes); copycols=true)
    end
    return bytes
end

# ---- messages and envelopes -------------------------------------------------------------------

mutable struct Message
    ptr::Ptr{Cvoid}
    handlers::Union{Nothing,Handlers}
    function Message()
        out = Ref{Ptr{Cvoid}}(C_NULL)
        check(ccall((:natsbridge_message_new, libnatsbridge), Cint, (Ref{Ptr{Cvoid}},), out))
        message = new(out[], nothing)
        finalizer(message) do m
            ccall((:natsbridge_message_free, libnatsbridge), Cvoid, (Ptr{Cvoid},), m.ptr)
            m.ptr = C_NULL
        end
        return message
    end
end

"""The bytes of an image, audio, video or binary payload left in a file until the message is
sent: `("scan", FileBytes("scan.bin"), "binary")`. A file too large ever to go direct is streamed
to the link store while it is read, never held whole."""
struct FileBytes
    path::String
end

"""A message of `(dataname, value, payload_type)` payloads and per-message options (the library
checks their names: `correlation_id`, `msg_purpose`, `metadata`, `trace_headers` (a Dict of W3C
trace headers, `"traceparent" => "00-…"`), ...)."""
function Message(data; fileserver_upload_handler=nothing, options...)
    message = Message()
    for (dataname, value, payload_type) in data
        if value isa FileBytes
            check(ccall((:natsbridge_message_add_file, libnatsbridge), Cint, (Ptr{Cvoid}, Cstring, Cstring, Cstring),
                        message.ptr, String(dataname), String(payload_type), value.path))
            continue
        end
        bytes = serialize(value, payload_type)
        check(ccall((:natsbridge_message_add, libnatsbridge), Cint, (Ptr{Cvoid}, Cstring, Cstring, Ptr{UInt8}, Csize_t),
                    message.ptr, String(dataname), String(payload_type), bytes, length(bytes)))
    end
    for (key, value) in options
        value === nothing && continue
        text = key in (:metadata, :trace_headers) ? JSON3.write(value) : string(value)
        check(ccall((:natsbridge_message_set, libnatsbridge), Cint, (Ptr{Cvoid}, Cstring, Cstring),
                    message.ptr, String(key), text))
    end
    if fileserver_upload_handler !== nothing
        message.handlers = Handlers(fileserver_upload_handler, nothing)
        check(ccall((:natsbridge_message_set_upload_handler, libnatsbridge), Cint, (Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Cvoid}),
                    message.ptr, upload_cfunction(), pointer_from_objref(message.handlers)))
    end
    return message
end

const FIELDS = ("correlation_id", "msg_id", "timestamp", "send_to", "msg_purpose", "sender_name", "sender_id",
                "receiver_name", "receiver_id", "reply_to", "reply_to_msg_id", "broker_url", "subject", "reply")

"""Reads a decoded envelope (which stays the library's) into the seeds' shape. `streamed`: an
envelope from `natsbridge_subscription_next_streamed`, whose link payloads are taken as
`LinkStream`s (they do not borrow from the envelope)."""
function read_envelope(ptr::Ptr{Cvoid}; streamed::Bool=false)
    env = Dict{String,Any}()
    value = Ref{Ptr{Cchar}}(C_NULL)
    for name in (FIELDS..., "metadata", "error", "trace_headers")
        check(ccall((:natsbridge_envelope_field, libnatsbridge), Cint, (Ptr{Cvoid}, Cstring, Ref{Ptr{Cchar}}),
                    ptr, name, value))
        env[name] = unsafe_string(value[])
    end
    env["metadata"] = parse_json(env["metadata"])
    # A NACK's (or dead letter's) {"code", "message", "details"}; nothing on other envelopes.
    env["error"] = isempty(env["error"]) ? nothing : parse_json(env["error"])
    # The sender's W3C trace context (spec/PROTOCOL.md §13), when the message carried one.
    isempty(env["trace_headers"]) ? delete!(env, "trace_headers") : (env["trace_headers"] = parse_json(env["trace_headers"]))
    count = Ref{Csize_t}(0)
    check(ccall((:natsbridge_envelope_payload_count, libnatsbridge), Cint, (Ptr{Cvoid}, Ref{Csize_t}), ptr, count))
    payloads = Tuple{String,Any,String}[]
    transports = String[]
    name, type, transport = Ref{Ptr{Cchar}}(C_NULL), Ref{Ptr{Cchar}}(C_NULL), Ref{Ptr{Cchar}}(C_NULL)
    data, len = Ref{Ptr{UInt8}}(C_NULL), Ref{Csize_t}(0)
    for i in 1:count[]
        check(ccall((:natsbridge_envelope_payload, libnatsbridge), Cint,
                    (Ptr{Cvoid}, Csize_t, Ref{Ptr{Cchar}}, Ref{Ptr{Cchar}}, Ref{Ptr{Cchar}}, Ref{Ptr{UInt8}}, Ref{Csize_t}),
                    ptr, i - 1, name, type, transport, data, len))
        dataname, payload_type, via = unsafe_string(name[]), unsafe_string(type[]), unsafe_string(transport[])
        payload_value = if streamed && via == "link"
            take_link(ptr, i - 1, dataname, payload_type, env["correlation_id"])
        else
            deserialize(copy(unsafe_wrap(Array, data[], len[])), payload_type)  # the envelope owns data[]
        end
        push!(payloads, (dataname, payload_value, payload_type))
        push!(transports, via)
    end
    env["payloads"] = payloads
    env["transports"] = transports
    return env
end

"""Reads a decoded envelope into the seeds' shape, then frees it."""
function take_envelope!(ptr::Ptr{Cvoid}; streamed::Bool=false)
    try
        return read_envelope(ptr; streamed=streamed)
    finally
        ccall((:natsbridge_envelope_free, libnatsbridge), Cvoid, (Ptr{Cvoid},), ptr)
    end
end

"""A received envelope's header as the library reads a request to reply to (its string fields)."""
request_json(request::AbstractDict) = JSON3.write(Dict(string(k) => v for (k, v) in request if v isa AbstractString))

"""The JSON a send published, and the envelope as a Dict."""
function sent(json::Ref{Ptr{Cchar}})
    text = take_string!(json[])
    return parse_json(text), text
end

function message_bytes(msg)
    msg isa AbstractVector{UInt8} && return Vector{UInt8}(msg)
    msg isa AbstractString && return Vector{UInt8}(codeunits(String(msg)))
    hasproperty(msg, :payload) && return Vector{UInt8}(codeunits(String(msg.payload)))
    return Vector{UInt8}(msg.data)
end

# ---- the seeds' API ---------------------------------------------------------------------------

"""
    smartsend(subject, data; client=nothing, broker_url=nothing, fileserver_url=nothing, options...) -> (env, env_json)

`data` is a list of `(dataname, value, payload_type)`. Sends on `client` if given; else in the
seeds' one-call style, on the library's process-wide connection to `broker_url` (default
`ENV["NATS_URL"]`) whose links go to `fileserver_url` (default `ENV["FILESERVER_URL"]`, else
the JetStream object store). Other keywords: the per-message options `size_threshold`,
`correlation_id`, `msg_purpose`, `sender_name`, `sender_id`, `receiver_name`, `receiver_id`,
`reply_to`, `reply_to_msg_id`, `metadata`, and `fileserver_upload_handler` (gets
`fileserver_url` as its first argument). Returns the envelope as a Dict and the JSON published;
on a client connected with `jetstream=true` the send is durable, and both carry the stream's
acknowledgement, `"pub_ack" => {"stream", "sequence", "duplicate"}`.
"""
function smartsend(subject::AbstractString, data; client::Union{Nothing,Client}=nothing,
                   broker_url::Union{Nothing,AbstractString}=nothing,
                   fileserver_url::Union{Nothing,AbstractString}=nothing, options...)
    message = Message(data; options...)
    json = Ref{Ptr{Cchar}}(C_NULL)
    if client === nothing
        GC.@preserve message check(ccall((:natsbridge_smartsend, libnatsbridge), Cint,
                                         (Cstring, Ptr{Cvoid}, Ptr{UInt8}, Ptr{UInt8}, Ref{Ptr{Cchar}}),
                                         String(subject), message.ptr, c_or_null(broker_url),
                                         c_or_null(fileserver_url), json))
    else
        broker_url === fileserver_url === nothing ||
            throw(invalid_argument("broker_url and fileserver_url choose the one-call connection; not with client"))
        GC.@preserve message client check(ccall((:natsbridge_client_send, libnatsbridge), Cint,
                                                (Ptr{Cvoid}, Cstring, Ptr{Cvoid}, Ref{Ptr{Cchar}}),
                                                client.ptr, String(subject), message.ptr, json))
    end
    return sent(json)
end

"""
    smartreceive(msg; client=nothing, broker_url=nothing, fileserver_url=nothing) -> Dict

Decodes a message: raw bytes, a String, or anything with a `payload` or `data` field (a
NATS.jl message). Links are fetched by `client`'s stores, else (one-call style) through the
library's process-wide connection to `broker_url` with `fileserver_url`; a message of direct
payloads needs no connection. The result has the envelope fields and
`"payloads" => [(dataname, value, payload_type), ...]` in order.
"""
function smartreceive(msg; client::Union{Nothing,Client}=nothing, broker_url::Union{Nothing,AbstractString}=nothing,
                      fileserver_url::Union{Nothing,AbstractString}=nothing)
    bytes = message_bytes(msg)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    if client === nothing
        check(ccall((:natsbridge_smartreceive, libnatsbridge), Cint,
                    (Ptr{UInt8}, Csize_t, Ptr{UInt8}, Ptr{UInt8}, Ref{Ptr{Cvoid}}),
                    bytes, length(bytes), c_or_null(broker_url), c_or_null(fileserver_url), out))
    else
        broker_url === fileserver_url === nothing ||
            throw(invalid_argument("broker_url and fileserver_url choose the one-call connection; not with client"))
        GC.@preserve client check(ccall((:natsbridge_client_receive, libnatsbridge), Cint,
                                        (Ptr{Cvoid}, Ptr{UInt8}, Csize_t, Ref{Ptr{Cvoid}}),
                                        client.ptr, bytes, length(bytes), out))
    end
    return take_envelope!(out[])
end

"""
    request(client, subject, data; timeout=5.0, options...) -> Dict

Sends a request and returns the decoded reply, waiting up to `timeout` seconds (else
`:TIMEOUT`); a NACK reply throws its error.
"""
function request(client::Client, subject::AbstractString, data; timeout::Real=5.0, options...)
    message = Message(data; options...)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    GC.@preserve message client check(ccall((:natsbridge_client_request, libnatsbridge), Cint,
                                            (Ptr{Cvoid}, Cstring, Ptr{Cvoid}, UInt64, Ref{Ptr{Cvoid}}),
                                            client.ptr, String(subject), message.ptr, milliseconds(timeout), out))
    return take_envelope!(out[])
end

"""
    reply(client, request, data; options...) -> (env, env_json)

Replies to a received request (a Dict from `next`, iteration or `smartreceive`): to its
`reply_to`, else its NATS reply subject, with its correlation id, `reply_to_msg_id` = its
`msg_id`, `msg_purpose` ACK unless given. `options` as `smartsend`'s per-message options.
"""
function reply(client::Client, request::AbstractDict, data; options...)
    message = Message(data; options...)
    json = Ref{Ptr{Cchar}}(C_NULL)
    GC.@preserve message client check(ccall((:natsbridge_client_reply_json, libnatsbridge), Cint,
                                            (Ptr{Cvoid}, Cstring, Ptr{Cvoid}, Ref{Ptr{Cchar}}),
                                            client.ptr, request_json(request), message.ptr, json))
    return sent(json)
end

"""
    reply_error(client, request, code, message) -> (env, env_json)

Replies to a received request with a NACK carrying `{code, message}`; `code` is a core error
code (`:TIMEOUT`, `"INVALID_ARGUMENT"`, ...). The requester's `request` throws it.
"""
function reply_error(client::Client, request::AbstractDict, code, message::AbstractString)
    json = Ref{Ptr{Cchar}}(C_NULL)
    GC.@preserve client check(ccall((:natsbridge_client_reply_error_json, libnatsbridge), Cint,
                                    (Ptr{Cvoid}, Cstring, Cint, Cstring, Ref{Ptr{Cchar}}),
                                    client.ptr, request_json(request), status_of(code), String(message), json))
    return sent(json)
end

"""Drains the one-call style's connections; later one-call sends connect again."""
close_shared(; timeout::Real=5.0) =
    check(ccall((:natsbridge_shared_close, libnatsbridge), Cint, (UInt64,), milliseconds(timeout)))

# At exit, so that one-call sends still buffered are written; a failure there has no one to tell.
function drain_shared_at_exit()
    try
        close_shared()
    catch e
        @debug "NATSBridge: draining the one-call connections at exit failed" exception = e
    end
end

# ---- subscriptions ----------------------------------------------------------------------------

"""A subscription: `next(sub)` or iteration yields decoded messages (Dicts); `next_streamed(sub)`
leaves their link payloads to read as `LinkStream`s."""
mutable struct Subscription
    ptr::Ptr{Cvoid}
    client::Client
    # Held while a pull runs, so close(sub) never frees the handle under it.
    lock::ReentrantLock
    function Subscription(ptr::Ptr{Cvoid}, client::Client)
        sub = new(ptr, client, ReentrantLock())
        finalizer(sub) do s
            ccall((:natsbridge_subscription_free, libnatsbridge), Cvoid, (Ptr{Cvoid},), s.ptr)
            s.ptr = C_NULL
        end
        return sub
    end
end

# How long one blocking pull waits: a waiting `next` notices close(sub) this soon.
const PULL_SLICE = 0.2

# `@threadcall` runs the blocking pull on libuv's thread pool, so waiting never blocks a Julia
# thread. It takes isbits argument types only (a `Ref{...}` type throws ArgumentError), so an
# out-param is declared `Ptr{...}` and passed as a Ref, which it converts and roots for the call.
# The pool thread's natsbridge_last_error() is not ours, so a failure's message comes from the
# subscription. `streamed`: link payloads are left to read (natsbridge_subscription_next_streamed).
function pull(sub::Subscription, timeout_ms::UInt64, streamed::Bool=false)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    status = if streamed
        @threadcall((:natsbridge_subscription_next_streamed, libnatsbridge), Cint,
                    (Ptr{Cvoid}, UInt64, Ptr{Ptr{Cvoid}}), sub.ptr, timeout_ms, out)
    else
        @threadcall((:natsbridge_subscription_next, libnatsbridge), Cint,
                    (Ptr{Cvoid}, UInt64, Ptr{Ptr{Cvoid}}), sub.ptr, timeout_ms, out)
    end
    status == 0 && return out[]
    message = Ref{Ptr{Cchar}}(C_NULL)
    check(ccall((:natsbridge_subscription_last_error, libnatsbridge), Cint, (Ptr{Cvoid}, Ref{Ptr{Cchar}}),
                sub.ptr, message))
    return NATSBridgeError(status_name(status), unsafe_string(message[]), "")
end

"""
    next(sub; timeout=nothing) -> Dict or nothing

The next decoded message; `nothing` once the subscription or connection is closed. With a
`timeout` in seconds, throws `:TIMEOUT` when none arrives in time. A message that fails to
decode throws its `NATSBridgeError`; the subscription goes on.
"""
next(sub::Subscription; timeout::Union{Nothing,Real}=nothing) = next_message(sub, timeout, false)

"""
    next_streamed(sub; timeout=nothing) -> Dict or nothing

As `next`, but link payloads are not fetched: in `"payloads"` each one's value is a
`LinkStream` (its transport "link"), whose bytes come as it is read, in chunks or to a file
with `save`, never whole in memory. Direct payloads are decoded as `next` decodes them.
"""
next_streamed(sub::Subscription; timeout::Union{Nothing,Real}=nothing) = next_message(sub, timeout, true)

function next_message(sub::Subscription, timeout::Union{Nothing,Real}, streamed::Bool)
    deadline = timeout === nothing ? Inf : time() + timeout
    while true
        slice = milliseconds(clamp(deadline - time(), 0, PULL_SLICE))
        pulled = lock(sub.lock) do
            sub.ptr == C_NULL ? nothing : pull(sub, slice, streamed)
        end
        pulled === nothing && return nothing
        pulled isa Ptr && return take_envelope!(pulled; streamed=streamed)
        if pulled.code === :TIMEOUT
            time() < deadline && continue
            throw(NATSBridgeError(:TIMEOUT, "TIMEOUT: no message within $(timeout) s", ""))
        end
        pulled.code === :NATS_CONNECTION_FAILED && return nothing
        throw(pulled)
    end
end

Base.IteratorSize(::Type{Subscription}) = Base.SizeUnknown()
Base.eltype(::Type{Subscription}) = Dict{String,Any}

function Base.iterate(sub::Subscription, _state=nothing)
    msg = next(sub)
    return msg === nothing ? nothing : (msg, nothing)
end

"""Unsubscribes; a `next` waiting on `sub` returns `nothing`."""
function Base.close(sub::Subscription)
    lock(sub.lock) do
        ccall((:natsbridge_subscription_free, libnatsbridge), Cvoid, (Ptr{Cvoid},), sub.ptr)
        sub.ptr = C_NULL
    end
    return nothing
end

"""
    subscribe(client, subject; queue=nothing) -> Subscription

Subscribes (in queue group `queue` unless `nothing`), returning once the server has the
subscription. Read it with `next(sub; timeout)` or `for msg in sub`; `close(sub)` ends it.
"""
function subscribe(client::Client, subject::AbstractString; queue::Union{Nothing,AbstractString}=nothing)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    GC.@preserve client check(ccall((:natsbridge_client_subscribe, libnatsbridge), Cint,
                                    (Ptr{Cvoid}, Cstring, Ptr{UInt8}, Ref{Ptr{Cvoid}}),
                                    client.ptr, String(subject), c_or_null(queue), out))
    return Subscription(out[], client)
end

# ---- link payloads received as streams (spec/PROTOCOL.md §8.3.2) -----------------------------

"""The most bytes one read of a link payload asks the library for: a chunk's size by default."""
const CHUNK_SIZE = 1 << 16

"""
    LinkStream <: IO

A link payload of a message from `next_streamed`: its bytes are fetched as they are read, never
held whole. Read it as any `IO` (`read(link)`, `read(link, n)`, `read(link, String)`,
`readbytes!`, `eof`, `readavailable`), by chunks (`for chunk in link`, or `eachchunk(link,
size)`: `Vector{UInt8}`s), or write it to a file with `save(link, path)`.

The last read checks the size and sha256 the sender declared: a read that reaches the end
without throwing delivered exactly the sender's bytes, and `link.sha256` then holds their
SHA-256 (lowercase hex; `nothing` before). A read that throws (`:CHECKSUM_MISMATCH`,
`:DOWNLOAD_FAILED`, ...) means the bytes read so far are not the sender's, and every later read
throws the same error. A broken download resumes where it stopped (a range request where the
store has them).

Fields: `dataname`, `payload_type`, `correlation_id` (the message's), `sha256`. `close(link)`
frees it (a link never read is never fetched); so does its finalizer. Reads wait on libuv's
thread pool (`@threadcall`), one at a time per link; `close` waits for a read under way.
"""
mutable struct LinkStream <: IO
    ptr::Ptr{Cvoid}
    dataname::String
    payload_type::String
    correlation_id::String
    sha256::Union{Nothing,String}
    # Held while the library reads the link (one thread at a time per link), and by close.
    lock::ReentrantLock
    # Bytes read from the library and not handed out yet: buffer[offset+1:end].
    buffer::Vector{UInt8}
    offset::Int
    started::Bool  # bytes were asked for: `save` takes only an unread link
    ended::Bool    # every byte arrived and was checked
    failure::Union{Nothing,NATSBridgeError}
    function LinkStream(ptr::Ptr{Cvoid}, dataname::String, payload_type::String, correlation_id::String)
        link = new(ptr, dataname, payload_type, correlation_id, nothing, ReentrantLock(), UInt8[], 0, false,
                   false, nothing)
        finalizer(link) do l
            ccall((:natsbridge_link_free, libnatsbridge), Cvoid, (Ptr{Cvoid},), l.ptr)
            l.ptr = C_NULL
        end
        return link
    end
end

"""Takes link payload `index` (0-based) of an envelope from `next_streamed` as a LinkStream."""
function take_link(envelope::Ptr{Cvoid}, index::Integer, dataname::String, payload_type::String,
                   correlation_id::String)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    check(ccall((:natsbridge_envelope_take_link, libnatsbridge), Cint, (Ptr{Cvoid}, Csize_t, Ref{Ptr{Cvoid}}),
                envelope, index, out))
    return LinkStream(out[], dataname, payload_type, correlation_id)
end

Base.show(io::IO, link::LinkStream) =
    print(io, "LinkStream(", repr(link.dataname), ", ", repr(link.payload_type),
          link.ptr == C_NULL ? ", closed" : link.failure !== nothing ? ", failed" : link.ended ? ", read" : "", ")")

closed_link(link::LinkStream) = invalid_argument("link payload $(repr(link.dataname)) is closed")

# A failed read or save ran on libuv's pool thread, whose natsbridge_last_error() is not ours
# (and the C API keeps no message per link), so the error is the status's code, naming the payload.
function link_failure(link::LinkStream, status::Cint, what::AbstractString)
    code = status_name(status)
    return NATSBridgeError(code, "$(code): link payload $(repr(link.dataname)) (correlation_id " *
                                 "$(link.correlation_id)): $(what) failed", link.correlation_id)
end

"""After the last read: the bytes' sha256, which the library now holds."""
function finish!(link::LinkStream)
    link.ended = true
    out = Ref{Ptr{Cchar}}(C_NULL)
    check(ccall((:natsbridge_link_sha256, libnatsbridge), Cint, (Ptr{Cvoid}, Ref{Ptr{Cchar}}), link.ptr, out))
    link.sha256 = out[] == C_NULL ? nothing : unsafe_string(out[])  # borrowed from the link: copied
    return nothing
end

# The library's next bytes (at most length(buf)) into `buf`: how many, 0 once every byte was read
# and checked. On libuv's thread pool like `pull`, so a read waiting for the network (or a broken
# download's retries) blocks no Julia thread. Called with link.lock held.
function link_read!(link::LinkStream, buf::Vector{UInt8})
    link.ptr == C_NULL && throw(closed_link(link))
    link.failure === nothing || throw(link.failure)
    link.ended && return 0
    link.started = true
    len = Ref{Csize_t}(0)
    status = GC.@preserve link buf @threadcall((:natsbridge_link_read, libnatsbridge), Cint,
                                               (Ptr{Cvoid}, Ptr{UInt8}, Csize_t, Ptr{Csize_t}),
                                               link.ptr, buf, length(buf), len)
    if status != 0
        link.failure = link_failure(link, status, "reading it")
        throw(link.failure)
    end
    len[] == 0 && finish!(link)
    return Int(len[])
end

# True when bytes are buffered, after reading the next ones if none were; false at the end.
# Called with link.lock held.
function buffered!(link::LinkStream)
    link.offset < length(link.buffer) && return true
    resize!(link.buffer, CHUNK_SIZE)  # the same memory each time: shrinking keeps it
    link.offset = 0
    n = try
        link_read!(link, link.buffer)
    catch
        empty!(link.buffer)
        rethrow()
    end
    resize!(link.buffer, n)
    return n > 0
end

"""The next bytes (at most `max`) as they arrive; empty once every byte was read and checked."""
function read_chunk(link::LinkStream, max::Int)
    lock(link.lock) do
        if link.offset < length(link.buffer)
            n = min(max, length(link.buffer) - link.offset)
            chunk = link.buffer[link.offset+1:link.offset+n]
            link.offset += n
            return chunk
        end
        chunk = Vector{UInt8}(undef, max)
        return resize!(chunk, link_read!(link, chunk))
    end
end

"""The chunks of a LinkStream, each at most `size` bytes (`eachchunk`)."""
struct LinkChunks
    link::LinkStream
    size::Int
end

"""
    eachchunk(link::LinkStream, size=$(CHUNK_SIZE))

Iterates the link payload's bytes as they arrive, in chunks (`Vector{UInt8}`, each its own) of
at most `size` bytes. The iteration ends once every byte arrived and was checked, or throws the
read's `NATSBridgeError`. `for chunk in link` is `for chunk in eachchunk(link)`.
"""
function eachchunk(link::LinkStream, size::Integer=CHUNK_SIZE)
    size >= 1 || throw(invalid_argument("a chunk is at least 1 byte, not $(size)"))
    return LinkChunks(link, Int(size))
end

Base.IteratorSize(::Type{LinkChunks}) = Base.SizeUnknown()
Base.eltype(::Type{LinkChunks}) = Vector{UInt8}

function Base.iterate(chunks::LinkChunks, _state=nothing)
    chunk = read_chunk(chunks.link, chunks.size)
    return isempty(chunk) ? nothing : (chunk, nothing)
end

Base.IteratorSize(::Type{LinkStream}) = Base.SizeUnknown()
Base.eltype(::Type{LinkStream}) = Vector{UInt8}
Base.iterate(link::LinkStream, _state=nothing) = iterate(LinkChunks(link, CHUNK_SIZE))

# The IO interface: eof, read(::UInt8), unsafe_read and readbytes! (what read(link, n),
# read(link, String), readline... build on), and read(link) for the rest at once.
Base.isopen(link::LinkStream) = link.ptr != C_NULL
Base.isreadable(link::LinkStream) = isopen(link)
Base.iswritable(::LinkStream) = false
Base.bytesavailable(link::LinkStream) = length(link.buffer) - link.offset
Base.readavailable(link::LinkStream) = read_chunk(link, CHUNK_SIZE)
Base.eof(link::LinkStream) = lock(() -> !buffered!(link), link.lock)

function Base.read(link::LinkStream, ::Type{UInt8})
    lock(link.lock) do
        buffered!(link) || throw(EOFError())
        link.offset += 1
        return link.buffer[link.offset]
    end
end

function Base.unsafe_read(link::LinkStream, p::Ptr{UInt8}, n::UInt)
    lock(link.lock) do
        done = UInt(0)
        while done < n
            buffered!(link) || throw(EOFError())
            k = min(n - done, UInt(length(link.buffer) - link.offset))
            GC.@preserve link unsafe_copyto!(p + done, pointer(link.buffer, link.offset + 1), k)
            link.offset += Int(k)
            done += k
        end
    end
    return nothing
end

function Base.readbytes!(link::LinkStream, b::AbstractVector{UInt8}, nb::Integer=length(b))
    limit = b isa Vector ? Int(nb) : min(Int(nb), length(b))  # only a Vector grows
    lock(link.lock) do
        n = 0
        while n < limit && buffered!(link)
            k = min(limit - n, length(link.buffer) - link.offset)
            n + k > length(b) && resize!(b, n + k)
            copyto!(b, firstindex(b) + n, link.buffer, link.offset + 1, k)
            link.offset += k
            n += k
        end
        return n
    end
end

function Base.read(link::LinkStream)
    lock(link.lock) do
        bytes = UInt8[]
        while buffered!(link)
            append!(bytes, view(link.buffer, link.offset+1:length(link.buffer)))
            link.offset = length(link.buffer)
        end
        return bytes
    end
end

"""
    save(link::LinkStream, path) -> Int

Writes the link payload's bytes to the file at `path` as they arrive, never holding them whole:
to `<path>.partial`, renamed to `path` once the size and sha256 are checked, and removed if they
are not (a file at `path` is then left as it was). Returns the number of bytes; `link.sha256` is
then set. Takes an unread link: once bytes were read, `:INVALID_ARGUMENT`. A failed save
(`:CHECKSUM_MISMATCH`, `:DOWNLOAD_FAILED`, also for a file that cannot be written) leaves the
link failed, as a failed read does.
"""
function save(link::LinkStream, path::AbstractString)
    lock(link.lock) do
        link.ptr == C_NULL && throw(closed_link(link))
        link.failure === nothing || throw(link.failure)
        link.started && throw(invalid_argument("save takes an unread link payload; $(repr(link.dataname)) was read"))
        # A missing directory is refused before the link is touched, so it can still be saved.
        isdir(dirname(abspath(path))) || throw(invalid_argument("no directory for $(repr(path))"))
        link.started = true
        written = Ref{UInt64}(0)
        status = GC.@preserve link @threadcall((:natsbridge_link_save, libnatsbridge), Cint,
                                               (Ptr{Cvoid}, Cstring, Ptr{UInt64}),
                                               link.ptr, String(path), written)
        if status != 0
            link.failure = link_failure(link, status, "saving it to $(repr(path))")
            throw(link.failure)
        end
        finish!(link)
        return Int(written[])
    end
end

"""Frees the link (one never read is never fetched), after a read under way; later reads
throw `:INVALID_ARGUMENT`."""
function Base.close(link::LinkStream)
    lock(link.lock) do
        ccall((:natsbridge_link_free, libnatsbridge), Cvoid, (Ptr{Cvoid},), link.ptr)
        link.ptr = C_NULL
        empty!(link.buffer)
        link.offset = 0
    end
    return nothing
end

# ---- durable delivery (JetStream mode, spec/PROTOCOL.md §12) ---------------------------------

"""Options in Julia's spelling (durations in seconds; `backoff` a vector of them) as the JSON
object the C API takes (its keys end in `_ms` for durations)."""
function options_json(names::Set{String}, options)
    object = Dict{String,Any}()
    for (key, value) in options
        value === nothing && continue
        name = String(key)
        endswith(name, "_ms") && throw(invalid_argument("option $(name): Julia takes durations in seconds, " *
                                                        "as $(chop(name; tail=3))"))
        if "$(name)_ms" in names
            name = "$(name)_ms"
            value = value isa Union{AbstractVector,Tuple} ? map(in_millis, collect(value)) : in_millis(value)
        end
        object[name] = value
    end
    return JSON3.write(object)
end

in_millis(seconds) = seconds isa Real ? 1000 * seconds : seconds

"""A result of the C API with its `_ms` members in seconds, without the suffix."""
in_seconds(value) = value isa AbstractVector ? map(in_seconds, value) : value
function in_seconds(value::AbstractDict)
    result = Dict{String,Any}()
    for (key, v) in value
        if endswith(key, "_ms") && v isa Real
            result[chop(key; tail=3)] = v / 1000
        else
            result[key] = in_seconds(v)
        end
    end
    return result
end

"""
    add_stream(client, name; timeout=10.0, options...) -> Dict

Creates the JetStream stream `name` (or updates it to these settings) and, unless
`dead_letter=false`, its dead-letter stream `<name>_DEAD_LETTER`. Options are core's:
`subjects` (default `["<name>.>"]`), `storage` ("file" or "memory"), `replicas`, `max_age`
(seconds; default and limit: the link TTL), `retention` ("limits", "workqueue", "interest"),
`duplicate_window` (seconds), `dead_letter`. Returns `name`, `subjects`, `max_age` (seconds,
0: unlimited), `replicas`, `messages`, `dead_letter_stream`.
"""
function add_stream(client::Client, name::AbstractString; timeout::Real=10.0, options...)
    json = Ref{Ptr{Cchar}}(C_NULL)
    GC.@preserve client check(ccall((:natsbridge_client_add_stream, libnatsbridge), Cint,
                                    (Ptr{Cvoid}, Cstring, Cstring, UInt64, Ref{Ptr{Cchar}}),
                                    client.ptr, String(name), options_json(stream_option_names(), options),
                                    milliseconds(timeout), json))
    return in_seconds(parse_json(take_string!(json[])))
end

"""
    sweep_links(client, stream; dry_run=true, min_age=nothing, timeout=30.0) -> Dict

The object-store link objects uploaded for `stream` whose message is not in it and that are
older than `min_age` seconds (`nothing`: the stream's duplicate window): listed, and removed
unless `dry_run`. Returns `stream`, `checked`, `orphans` (each `name`, `url`, `size`, `msg_id`,
`age` in seconds) and `dry_run`.
"""
function sweep_links(client::Client, stream::AbstractString; dry_run::Bool=true,
                     min_age::Union{Nothing,Real}=nothing, timeout::Real=30.0)
    json = Ref{Ptr{Cchar}}(C_NULL)
    min_age_ms = min_age === nothing ? Int64(-1) : round(Int64, 1000 * min_age)
    GC.@preserve client check(ccall((:natsbridge_client_sweep_links, libnatsbridge), Cint,
                                    (Ptr{Cvoid}, Cstring, Cint, Int64, UInt64, Ref{Ptr{Cchar}}),
                                    client.ptr, String(stream), Cint(dry_run), min_age_ms, milliseconds(timeout),
                                    json))
    return in_seconds(parse_json(take_string!(json[])))
end

"""
One decoded delivery of a durable consumer: `envelope` (a Dict as `next(sub)` gives) and `info`
(`stream`, `consumer`, `stream_sequence`, `consumer_sequence`, `delivered` (1 the first time),
`pending`, `replayed`, `redelivered`). Settle it once with `ack`, `nak` or `term`
(`in_progress` asks for more time); an unsettled delivery is delivered again after the
consumer's `ack_wait`.
"""
mutable struct Delivery
    ptr::Ptr{Cvoid}
    envelope::Dict{String,Any}
    info::Dict{String,Any}
    function Delivery(ptr::Ptr{Cvoid})
        delivery = new(ptr, Dict{String,Any}(), Dict{String,Any}())
        finalizer(delivery) do d
            ccall((:natsbridge_delivery_free, libnatsbridge), Cvoid, (Ptr{Cvoid},), d.ptr)
            d.ptr = C_NULL
        end
        env, info = Ref{Ptr{Cvoid}}(C_NULL), Ref{Ptr{Cchar}}(C_NULL)
        check(ccall((:natsbridge_delivery_envelope, libnatsbridge), Cint, (Ptr{Cvoid}, Ref{Ptr{Cvoid}}), ptr, env))
        delivery.envelope = read_envelope(env[])  # borrowed from the delivery: not freed on its own
        check(ccall((:natsbridge_delivery_info_json, libnatsbridge), Cint, (Ptr{Cvoid}, Ref{Ptr{Cchar}}), ptr, info))
        delivery.info = parse_json(unsafe_string(info[]))
        return delivery
    end
end

"""Processed: not delivered again. Waits up to `timeout` seconds (for the server's confirmation
with `double_ack` or on a work-queue stream). Settling twice throws `:INVALID_ARGUMENT`."""
function ack(d::Delivery; timeout::Real=5.0)
    GC.@preserve d check(ccall((:natsbridge_delivery_ack, libnatsbridge), Cint, (Ptr{Cvoid}, UInt64),
                               d.ptr, milliseconds(timeout)))
    return nothing
end

"""Not processed: delivered again after `delay` seconds (`nothing`: at once)."""
function nak(d::Delivery; delay::Union{Nothing,Real}=nothing, timeout::Real=5.0)
    delay_ms = delay === nothing ? UInt64(0) : milliseconds(delay)
    GC.@preserve d check(ccall((:natsbridge_delivery_nak, libnatsbridge), Cint, (Ptr{Cvoid}, UInt64, UInt64),
                               d.ptr, delay_ms, milliseconds(timeout)))
    return nothing
end

"""Still working on it: the server waits another `ack_wait` before delivering it again."""
function in_progress(d::Delivery; timeout::Real=5.0)
    GC.@preserve d check(ccall((:natsbridge_delivery_in_progress, libnatsbridge), Cint, (Ptr{Cvoid}, UInt64),
                               d.ptr, milliseconds(timeout)))
    return nothing
end

"""Never to be processed: not delivered again."""
function term(d::Delivery; timeout::Real=5.0)
    GC.@preserve d check(ccall((:natsbridge_delivery_term, libnatsbridge), Cint, (Ptr{Cvoid}, UInt64),
                               d.ptr, milliseconds(timeout)))
    return nothing
end

"""A durable pull consumer: `next(consumer)` or iteration yields `Delivery`s."""
mutable struct Consumer
    ptr::Ptr{Cvoid}
    client::Client
    # Held while a pull runs, so close(consumer) never frees the handle under it.
    lock::ReentrantLock
    function Consumer(ptr::Ptr{Cvoid}, client::Client)
        consumer = new(ptr, client, ReentrantLock())
        finalizer(consumer) do c
            ccall((:natsbridge_consumer_free, libnatsbridge), Cvoid, (Ptr{Cvoid},), c.ptr)
            c.ptr = C_NULL
        end
        return consumer
    end
end

# As `pull(::Subscription, ...)`: on libuv's thread pool (the out-param declared `Ptr`), the
# failure's message from the consumer. A delivery still decoding when a slice ends is kept by
# the library for the next.
function pull(consumer::Consumer, timeout_ms::UInt64)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    status = @threadcall((:natsbridge_consumer_next, libnatsbridge), Cint,
                         (Ptr{Cvoid}, UInt64, Ptr{Ptr{Cvoid}}), consumer.ptr, timeout_ms, out)
    status == 0 && return out[]
    message = Ref{Ptr{Cchar}}(C_NULL)
    check(ccall((:natsbridge_consumer_last_error, libnatsbridge), Cint, (Ptr{Cvoid}, Ref{Ptr{Cchar}}),
                consumer.ptr, message))
    return NATSBridgeError(status_name(status), unsafe_string(message[]), "")
end

"""
    next(consumer; timeout=nothing) -> Delivery or nothing

The next decoded delivery; `nothing` once the consumer or connection is closed. With a
`timeout` in seconds, throws `:TIMEOUT` when none is ready in time. Messages that fail to
decode are settled by the library (nak'd for later, or dead-lettered and terminated), never
yielded.
"""
function next(consumer::Consumer; timeout::Union{Nothing,Real}=nothing)
    deadline = timeout === nothing ? Inf : time() + timeout
    while true
        slice = milliseconds(clamp(deadline - time(), 0, PULL_SLICE))
        pulled = lock(consumer.lock) do
            consumer.ptr == C_NULL ? nothing : pull(consumer, slice)
        end
        pulled === nothing && return nothing
        pulled isa Ptr && return Delivery(pulled)
        if pulled.code === :TIMEOUT
            time() < deadline && continue
            throw(NATSBridgeError(:TIMEOUT, "TIMEOUT: no delivery within $(timeout) s", ""))
        end
        pulled.code === :NATS_CONNECTION_FAILED && return nothing
        throw(pulled)
    end
end

Base.IteratorSize(::Type{Consumer}) = Base.SizeUnknown()
Base.eltype(::Type{Consumer}) = Delivery

function Base.iterate(consumer::Consumer, _state=nothing)
    delivery = next(consumer)
    return delivery === nothing ? nothing : (delivery, nothing)
end

"""Frees the consumer (the durable stays on the server); a `next` waiting on it returns `nothing`."""
function Base.close(consumer::Consumer)
    lock(consumer.lock) do
        ccall((:natsbridge_consumer_free, libnatsbridge), Cvoid, (Ptr{Cvoid},), consumer.ptr)
        consumer.ptr = C_NULL
    end
    return nothing
end

"""
    consume(client, stream, durable; timeout=10.0, options...) -> Consumer

A durable pull consumer `durable` on `stream` (created, or updated to these options). Options
are core's: `ack_wait` (seconds, default 30), `max_deliver` (-1: unlimited), `backoff` (a vector
of seconds), `max_ack_pending`, `double_ack`, `nak_delay` (seconds), `dead_letter_subject`,
`filter_subject`, `batch`, `deliver_from` ("all" or "new"). Read it with `next(consumer;
timeout)` or `for delivery in consumer`, and settle each delivery with `ack`, `nak`, `term`.
"""
function consume(client::Client, stream::AbstractString, durable::AbstractString; timeout::Real=10.0, options...)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    GC.@preserve client check(ccall((:natsbridge_client_consume, libnatsbridge), Cint,
                                    (Ptr{Cvoid}, Cstring, Cstring, Cstring, UInt64, Ref{Ptr{Cvoid}}),
                                    client.ptr, String(stream), String(durable),
                                    options_json(consume_option_names(), options), milliseconds(timeout), out))
    return Consumer(out[], client)
end

function __init__()
    if isfile(libnatsbridge)
        atexit(drain_shared_at_exit)
    else
        @warn "NATSBridge: $(libnatsbridge) does not exist; set NATSBRIDGE_LIB to libnatsbridge"
    end
end

end # module
