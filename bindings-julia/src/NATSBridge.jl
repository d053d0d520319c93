"""
    NATSBridge

Julia front end of NATSBridge: `ccall`s into libnatsbridge (the C API of bindings-c; see
include/natsbridge.h there). The protocol, I/O and error codes are the Rust core's; this module
converts Julia values to the bytes the wire carries and back.

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

export smartsend, smartreceive, connect, subscribe, request, NATSBridgeError, Client, Subscription

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
`:DOWNLOAD_FAILED`, ...) or one of the C API's own `:INVALID_ARGUMENT` and `:INTERNAL_ERROR`.
"""
struct NATSBridgeError <: Exception
    code::Symbol
    message::String
    correlation_id::String
end

Base.showerror(io::IO, e::NATSBridgeError) = print(io, "NATSBridgeError(", e.code, "): ", e.message)

status_name(status::Cint) =
    Symbol(unsafe_string(ccall((:natsbridge_status_name, libnatsbridge), Cstring, (Cint,), status)))

function check(status::Cint)
    status == 0 && return nothing
    message = unsafe_string(ccall((:natsbridge_last_error, libnatsbridge), Cstring, ()))
    cid = unsafe_string(ccall((:natsbridge_last_error_correlation_id, libnatsbridge), Cstring, ()))
    throw(NATSBridgeError(status_name(status), message, cid))
end

take_string!(ptr::Ptr{Cchar}) =
    try
        unsafe_string(ptr)
    finally
        ccall((:natsbridge_string_free, libnatsbridge), Cvoid, (Ptr{Cchar},), ptr)
    end

# ---- custom link-store handlers (the seeds' fileserver_upload_handler / _download_handler) -----

"""What a client's or message's handlers need while C holds `pointer_from_objref` of it."""
mutable struct Handlers
    upload::Union{Nothing,Function}
    download::Union{Nothing,Function}
end

buffer_append(buffer::Ptr{Cvoid}, bytes::AbstractVector{UInt8}) =
    ccall((:natsbridge_buffer_append, libnatsbridge), Cint, (Ptr{Cvoid}, Ptr{UInt8}, Csize_t),
          buffer, bytes, length(bytes))

buffer_append(buffer::Ptr{Cvoid}, text::AbstractString) = buffer_append(buffer, Vector{UInt8}(codeunits(String(text))))

# Handler failures go back to C as a message; nothing is thrown across the boundary.
function upload_trampoline(user_data::Ptr{Cvoid}, fileserver_url::Cstring, dataname::Cstring,
                           correlation_id::Cstring, data::Ptr{UInt8}, len::Csize_t, url_out::Ptr{Cvoid})::Cint
    try
        handlers = unsafe_pointer_to_objref(user_data)::Handlers
        bytes = copy(unsafe_wrap(Array, data, len))
        result = handlers.upload(unsafe_string(fileserver_url), unsafe_string(dataname), bytes)
        url = result isa AbstractDict ? string(result["url"]) : string(result)
        return buffer_append(url_out, url) == 0 ? Cint(0) : Cint(1)
    catch e
        buffer_append(url_out, sprint(showerror, e))
        return Cint(1)
    end
end

function download_trampoline(user_data::Ptr{Cvoid}, url::Cstring, size::UInt64, correlation_id::Cstring,
                             bytes_out::Ptr{Cvoid})::Cint
    try
        handlers = unsafe_pointer_to_objref(user_data)::Handlers
        bytes = handlers.download(unsafe_string(url), size, unsafe_string(correlation_id))
        return buffer_append(bytes_out, bytes) == 0 ? Cint(0) : Cint(1)
    catch e
        buffer_append(bytes_out, sprint(showerror, e))
        return Cint(1)
    end
end

upload_cfunction() = @cfunction(upload_trampoline, Cint,
                                (Ptr{Cvoid}, Cstring, Cstring, Cstring, Ptr{UInt8}, Csize_t, Ptr{Cvoid}))
download_cfunction() = @cfunction(download_trampoline, Cint, (Ptr{Cvoid}, Cstring, UInt64, Cstring, Ptr{Cvoid}))

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

function option_text(value)
    value isa Bool && return value ? "true" : "false"
    value isa AbstractVector && return join(string.(value), ",")
    return string(value)
end

"""
    connect(url=nothing; kwargs...) -> Client

Connects to NATS (`url`, else `ENV["NATS_URL"]`, else nats://localhost:4222). Keyword
arguments are the C API's connect options (`name`, `user`, `password`, `token`,
`size_threshold`, `fileserver_url`, `allowed_origin`, `max_retries`, ...), plus
`fileserver_upload_handler(fileserver_url, dataname, bytes) -> url or Dict("url"=>...)`,
`fileserver_download_handler(url, size, correlation_id) -> bytes` and `handler_url_prefix`.
"""
function connect(url::Union{Nothing,AbstractString}=nothing; fileserver_upload_handler=nothing,
                 fileserver_download_handler=nothing, kwargs...)
    opts = Ref{Ptr{Cvoid}}(C_NULL)
    check(ccall((:natsbridge_connect_options_new, libnatsbridge), Cint, (Ref{Ptr{Cvoid}},), opts))
    handlers = nothing
    try
        for (key, value) in kwargs
            values = key === :allowed_origin || key === :handler_url_prefix ? vcat(value) : [value]
            for v in values
                check(ccall((:natsbridge_connect_options_set, libnatsbridge), Cint, (Ptr{Cvoid}, Cstring, Cstring),
                            opts[], String(key), option_text(v)))
            end
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
        server = url === nothing ? C_NULL : String(url)  # ccall keeps the String alive for the call
        check(ccall((:natsbridge_client_connect, libnatsbridge), Cint, (Ptr{UInt8}, Ptr{Cvoid}, Ref{Ptr{Cvoid}}),
                    server, opts[], out))
        return Client(out[], handlers)
    finally
        ccall((:natsbridge_connect_options_free, libnatsbridge), Cvoid, (Ptr{Cvoid},), opts[])
    end
end

"""Drains and closes the connection (waiting up to `timeout` seconds)."""
function Base.close(client::Client; timeout::Real=10)
    client.ptr == C_NULL && return nothing
    check(ccall((:natsbridge_client_close, libnatsbridge), Cint, (Ptr{Cvoid}, UInt64),
                client.ptr, round(UInt64, timeout * 1000)))
    return nothing
end

const SHARED = Dict{Tuple{String,String},Client}()
const SHARED_LOCK = ReentrantLock()

"""The process-wide client per (broker_url, fileserver_url) of the seeds' one-call style."""
function shared_client(broker_url::AbstractString, fileserver_url::AbstractString)
    lock(SHARED_LOCK) do
        get!(SHARED, (String(broker_url), String(fileserver_url))) do
            isempty(fileserver_url) ? connect(broker_url) : connect(broker_url; fileserver_url=fileserver_url)
        end
    end
end

default_broker() = get(ENV, "NATS_URL", "nats://localhost:4222")

# ---- payload conversion -----------------------------------------------------------------------

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
        return copy(JSON3.read(bytes))
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

const SEND_OPTIONS = (:correlation_id, :msg_purpose, :sender_name, :sender_id, :receiver_name, :receiver_id,
                      :reply_to, :reply_to_msg_id, :size_threshold, :metadata)

function Message(data; fileserver_upload_handler=nothing, kwargs...)
    message = Message()
    for (dataname, value, payload_type) in data
        bytes = serialize(value, payload_type)
        check(ccall((:natsbridge_message_add, libnatsbridge), Cint, (Ptr{Cvoid}, Cstring, Cstring, Ptr{UInt8}, Csize_t),
                    message.ptr, String(dataname), String(payload_type), bytes, length(bytes)))
    end
    for (key, value) in kwargs
        key in SEND_OPTIONS || throw(ArgumentError("unknown smartsend option $(key)"))
        text = key === :metadata ? JSON3.write(value) : string(value)
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
                "receiver_name", "receiver_id", "reply_to", "reply_to_msg_id", "broker_url")

"""Reads a decoded envelope into the seeds' shape, then frees it."""
function take_envelope!(ptr::Ptr{Cvoid})
    try
        env = Dict{String,Any}()
        value = Ref{Ptr{Cchar}}(C_NULL)
        for name in (FIELDS..., "metadata", "subject")
            check(ccall((:natsbridge_envelope_field, libnatsbridge), Cint, (Ptr{Cvoid}, Cstring, Ref{Ptr{Cchar}}),
                        ptr, name, value))
            env[name] = unsafe_string(value[])
        end
        env["metadata"] = copy(JSON3.read(env["metadata"]))
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
            payload_type = unsafe_string(type[])
            bytes = copy(unsafe_wrap(Array, data[], len[]))  # the envelope owns data[]
            push!(payloads, (unsafe_string(name[]), deserialize(bytes, payload_type), payload_type))
            push!(transports, unsafe_string(transport[]))
        end
        env["payloads"] = payloads
        env["transports"] = transports
        return env
    finally
        ccall((:natsbridge_envelope_free, libnatsbridge), Cvoid, (Ptr{Cvoid},), ptr)
    end
end

# ---- the seeds' API ---------------------------------------------------------------------------

"""
    smartsend(subject, data; broker_url, fileserver_url, client, kwargs...) -> (env, env_json)

`data` is a list of `(dataname, value, payload_type)`. Sends on `client` if given, else on the
process-wide client for `broker_url` (default `ENV["NATS_URL"]`). Other keywords:
`size_threshold`, `correlation_id`, `msg_purpose`, `sender_name`, `receiver_name`,
`receiver_id`, `reply_to`, `reply_to_msg_id`, `metadata`, `fileserver_upload_handler`.
Returns the envelope as a Dict and the JSON published.
"""
function smartsend(subject::AbstractString, data; broker_url::AbstractString=default_broker(),
                   fileserver_url::AbstractString="", client::Union{Nothing,Client}=nothing, kwargs...)
    c = client === nothing ? shared_client(broker_url, fileserver_url) : client
    message = Message(data; kwargs...)
    json = Ref{Ptr{Cchar}}(C_NULL)
    GC.@preserve message c check(ccall((:natsbridge_client_send, libnatsbridge), Cint,
                                       (Ptr{Cvoid}, Cstring, Ptr{Cvoid}, Ref{Ptr{Cchar}}),
                                       c.ptr, String(subject), message.ptr, json))
    text = take_string!(json[])
    return copy(JSON3.read(text)), text
end

"""
    smartreceive(msg; broker_url, fileserver_url, client) -> Dict

Decodes a message: raw bytes, a String, or anything with a `payload` or `data` field (a
NATS.jl message). Link payloads are fetched by the client's stores. The result has the envelope
fields and `"payloads" => [(dataname, value, payload_type), ...]` in order.
"""
function smartreceive(msg; broker_url::AbstractString=default_broker(), fileserver_url::AbstractString="",
                      client::Union{Nothing,Client}=nothing)
    bytes = msg isa AbstractVector{UInt8} ? Vector{UInt8}(msg) :
            msg isa AbstractString ? Vector{UInt8}(codeunits(String(msg))) :
            hasproperty(msg, :payload) ? Vector{UInt8}(codeunits(String(msg.payload))) :
            Vector{UInt8}(msg.data)
    c = client === nothing ? shared_client(broker_url, fileserver_url) : client
    out = Ref{Ptr{Cvoid}}(C_NULL)
    GC.@preserve c check(ccall((:natsbridge_client_receive, libnatsbridge), Cint,
                               (Ptr{Cvoid}, Ptr{UInt8}, Csize_t, Ref{Ptr{Cvoid}}), c.ptr, bytes, length(bytes), out))
    return take_envelope!(out[])
end

"""
    request(client, subject, data; timeout=10, kwargs...) -> Dict

Sends a request and returns the decoded reply; a NACK reply throws its error.
"""
function request(client::Client, subject::AbstractString, data; timeout::Real=10, kwargs...)
    message = Message(data; kwargs...)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    GC.@preserve message client check(ccall((:natsbridge_client_request, libnatsbridge), Cint,
                                            (Ptr{Cvoid}, Cstring, Ptr{Cvoid}, UInt64, Ref{Ptr{Cvoid}}),
                                            client.ptr, String(subject), message.ptr,
                                            round(UInt64, timeout * 1000), out))
    return take_envelope!(out[])
end

# ---- subscriptions ----------------------------------------------------------------------------

"""A subscription: `sub.channel` yields decoded messages (Dicts) or NATSBridgeErrors."""
mutable struct Subscription
    ptr::Ptr{Cvoid}
    client::Client
    channel::Channel{Any}
    function Subscription(ptr::Ptr{Cvoid}, client::Client, channel::Channel{Any})
        sub = new(ptr, client, channel)
        finalizer(sub) do s
            ccall((:natsbridge_subscription_free, libnatsbridge), Cvoid, (Ptr{Cvoid},), s.ptr)
            s.ptr = C_NULL
        end
        return sub
    end
end

Base.iterate(sub::Subscription, state=nothing) = iterate(sub.channel, state)
Base.take!(sub::Subscription) = take!(sub.channel)
Base.close(sub::Subscription) = close(sub.channel)

# `@threadcall` runs the blocking pull on libuv's thread pool, so waiting never blocks a Julia
# thread; short timeouts let the task notice a closed channel. The pool thread's
# natsbridge_last_error() is not ours, so a failure's message comes from the subscription.
function pull(sub)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    status = @threadcall((:natsbridge_subscription_next, libnatsbridge), Cint,
                         (Ptr{Cvoid}, UInt64, Ref{Ptr{Cvoid}}), sub.ptr, UInt64(200), out)
    status == 0 && return out[]
    message = Ref{Ptr{Cchar}}(C_NULL)
    check(ccall((:natsbridge_subscription_last_error, libnatsbridge), Cint, (Ptr{Cvoid}, Ref{Ptr{Cchar}}),
                sub.ptr, message))
    return NATSBridgeError(status_name(status), unsafe_string(message[]), "")
end

"""
    subscribe(client, subject; queue_group=nothing, buffer=64) -> Subscription

Subscribes (returning once the server has the subscription) and starts a task that pulls
decoded messages into `sub.channel`. A message that fails to decode is put there as its
`NATSBridgeError`; the subscription goes on. `close(sub)` stops it.
"""
function subscribe(client::Client, subject::AbstractString; queue_group::Union{Nothing,AbstractString}=nothing,
                   buffer::Integer=64)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    group = queue_group === nothing ? C_NULL : String(queue_group)
    GC.@preserve client check(ccall((:natsbridge_client_subscribe, libnatsbridge), Cint,
                                                (Ptr{Cvoid}, Cstring, Ptr{UInt8}, Ref{Ptr{Cvoid}}),
                                                client.ptr, String(subject), group, out))
    channel = Channel{Any}(buffer)
    sub = Subscription(out[], client, channel)
    errormonitor(@async begin
        while isopen(channel)
            pulled = pull(sub)
            if pulled isa NATSBridgeError
                pulled.code === :TIMEOUT && continue
                pulled.code === :NATS_CONNECTION_FAILED && (close(channel); break)
                put!(channel, pulled)
            else
                put!(channel, take_envelope!(pulled))
            end
        end
    end)
    return sub
end

function __init__()
    isfile(libnatsbridge) || @warn "NATSBridge: $(libnatsbridge) does not exist; set NATSBRIDGE_LIB to libnatsbridge"
end

end # module
