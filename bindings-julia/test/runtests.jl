# Tests of NATSBridge.jl against a real nats-server with JetStream (NATS_URL) and libnatsbridge
# (NATSBRIDGE_LIB). Julia is not installed on the project's CI machines: there these files are
# parsed and their ccalls checked against the header (scripts/check.sh); run them with
# `NATS_URL=... NATSBRIDGE_LIB=... julia --project -e 'using Pkg; Pkg.test()'` where Julia is.
using Test
using DataFrames
using NATSBridge

const URL = get(ENV, "NATS_URL", "nats://127.0.0.1:4222")

caught(f) =
    try
        f()
        nothing
    catch e
        e
    end

@testset "NATSBridge.jl" begin
    @testset "the README's vocabulary" begin
        for name in (:smartsend, :smartreceive, :connect, :subscribe, :next, :request, :reply, :reply_error,
                     :add_stream, :consume, :ack, :nak, :in_progress, :term, :sweep_links, :next_streamed,
                     :LinkStream, :eachchunk, :save)
            @test name in names(NATSBridge)
        end
        @test hasmethod(flush, Tuple{NATSBridge.Client})
        @test hasmethod(close, Tuple{NATSBridge.Client})
    end

    @testset "every payload type, direct and link" begin
        for (threshold, transport) in ((500_000, "direct"), (0, "link"))
            client = connect(URL; size_threshold=threshold, connect_timeout=2.5)
            sub = subscribe(client, "jl.roundtrip.$(transport)")
            df = DataFrame(x=[1, 2, 3], name=["a", "b", missing])
            data = [
                ("greeting", "héllo ✓", "text"),
                ("config", Dict("a" => 1, "nested" => Dict("b" => [1, 2])), "dictionary"),
                ("rows", [Dict("x" => 1), Dict("x" => 2)], "jsontable"),
                ("table", df, "arrowtable"),
                ("photo", UInt8.(0:255), "image"),
                ("sound", UInt8[1, 2, 3], "audio"),
                ("clip", UInt8[], "video"),
                ("blob", rand(UInt8, 1000), "binary"),
            ]
            env, json = smartsend("jl.roundtrip.$(transport)", data; client=client, msg_purpose="event")
            @test env["msg_purpose"] == "event"
            @test occursin("\"payload_type\":\"arrowtable\"", json)
            msg = next(sub; timeout=5.0)
            @test msg["send_to"] == "jl.roundtrip.$(transport)"
            @test [p[1] for p in msg["payloads"]] == [d[1] for d in data]
            @test all(==(transport), msg["transports"])
            @test msg["payloads"][1][2] == "héllo ✓"
            @test msg["payloads"][2][2]["nested"]["b"] == [1, 2]
            @test msg["payloads"][3][2][2]["x"] == 2
            received = msg["payloads"][4][2]
            @test received isa DataFrame
            @test isequal(received.x, df.x) && isequal(received.name, df.name)
            @test msg["payloads"][5][2] == UInt8.(0:255)
            @test msg["payloads"][7][2] == UInt8[]
            @test msg["payloads"][8][2] == data[8][2]
            close(sub)
            @test next(sub) === nothing
            close(client)
        end
    end

    @testset "the one-call style" begin
        sub_client = connect(URL)
        sub = subscribe(sub_client, "jl.raw")
        env, json = smartsend("jl.raw", [("n", "1", "text")]; broker_url=URL)
        decoded = smartreceive(Vector{UInt8}(codeunits(json)))
        @test decoded["correlation_id"] == env["correlation_id"]
        @test decoded["payloads"] == [("n", "1", "text")]
        @test next(sub; timeout=5.0)["correlation_id"] == env["correlation_id"]
        @test !haskey(decoded, "trace_headers")
        # A trace context goes as headers and comes back as trace_headers.
        traced = Dict("traceparent" => "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        smartsend("jl.raw", [("n", "2", "text")]; broker_url=URL, trace_headers=traced)
        @test next(sub; timeout=5.0)["trace_headers"] == traced
        @test metrics(sub_client)["messages_received"] == 2
        # A link through the object store of the shared connection.
        blob = rand(UInt8, 2000)
        env, json = smartsend("jl.raw", [("blob", blob, "binary")]; broker_url=URL, size_threshold=100)
        decoded = smartreceive(json; broker_url=URL)
        @test decoded["payloads"][1][2] == blob && decoded["transports"] == ["link"]
        # A file too large for direct: streamed to the object store while it is read.
        big = rand(UInt8, 2_000_000)
        path = tempname()
        write(path, big)
        env, json = smartsend("jl.raw", [("scan", FileBytes(path), "binary")]; broker_url=URL)
        decoded = smartreceive(json; broker_url=URL)
        @test decoded["payloads"][1][2] == big && decoded["transports"] == ["link"]
        rm(path)
        NATSBridge.close_shared()
        for msg in sub  # iteration yields decoded messages
            @test msg["correlation_id"] == env["correlation_id"]
            break
        end
        close(sub)
        close(sub_client)
    end

    @testset "subscriptions: queue groups and time limits" begin
        client = connect(URL)
        sub = subscribe(client, "jl.queue"; queue="workers")
        err = caught(() -> next(sub; timeout=0.3))
        @test err isa NATSBridgeError && err.code === :TIMEOUT
        smartsend("jl.queue", [("n", "1", "text")]; client=client)
        @test next(sub; timeout=5.0)["payloads"] == [("n", "1", "text")]
        flush(client; timeout=2.0)
        close(client; timeout=5.0)
    end

    @testset "a link payload received as a stream" begin
        client = connect(URL; size_threshold=100_000)
        sub = subscribe(client, "jl.streamed")
        blob = UInt8[(i * 17 + 1) % 256 for i in 1:2_000_000]
        sent, _ = smartsend("jl.streamed", [("big", blob, "binary"), ("note", "small", "text")]; client=client)
        sha = sent["payloads"][1]["metadata"]["sha256"]
        for _ in 1:3
            smartsend("jl.streamed", [("big", blob, "binary"), ("note", "small", "text")]; client=client)
        end

        # First copy: in chunks of at most 100,000 bytes.
        msg = next_streamed(sub; timeout=10.0)
        @test msg["transports"] == ["link", "direct"]
        @test msg["payloads"][2] == ("note", "small", "text")
        name, link, payload_type = msg["payloads"][1]
        @test link isa LinkStream && link isa IO
        @test (name, payload_type, link.dataname, link.payload_type) == ("big", "binary", "big", "binary")
        @test link.correlation_id == sent["correlation_id"] && link.sha256 === nothing
        chunks = collect(eachchunk(link, 100_000))
        @test all(c -> 1 <= length(c) <= 100_000, chunks) && reduce(vcat, chunks) == blob
        @test link.sha256 == sha
        @test eof(link) && read(link) == UInt8[]  # the end stays the end
        close(link)
        @test !isopen(link)
        err = caught(() -> read(link))
        @test err isa NATSBridgeError && err.code === :INVALID_ARGUMENT

        # Second copy: as an IO; once read, it cannot be saved.
        link = next_streamed(sub; timeout=10.0)["payloads"][1][2]
        head = read(link, 10)
        err = caught(() -> save(link, tempname()))
        @test err isa NATSBridgeError && err.code === :INVALID_ARGUMENT
        @test read(link, UInt8) == blob[11]
        rest = read(link)
        @test vcat(head, blob[11], rest) == blob && link.sha256 == sha
        err = caught(() -> read(link, UInt8))
        @test err isa EOFError

        # Third copy: saved to a file through <path>.partial.
        dir = mktempdir()
        path = joinpath(dir, "big.bin")
        link = next_streamed(sub; timeout=10.0)["payloads"][1][2]
        @test save(link, path) == length(blob)
        @test read(path) == blob && readdir(dir) == ["big.bin"] && link.sha256 == sha
        err = caught(() -> save(next_streamed(sub; timeout=10.0)["payloads"][1][2], joinpath(dir, "no", "such.bin")))
        @test err isa NATSBridgeError && err.code === :INVALID_ARGUMENT

        # The plain `next` still fetches links whole; `for chunk in link` yields the chunks.
        smartsend("jl.streamed", [("big", blob, "binary")]; client=client)
        @test next(sub; timeout=10.0)["payloads"][1][2] == blob
        smartsend("jl.streamed", [("big", blob, "binary")]; client=client)
        link = next_streamed(sub; timeout=10.0)["payloads"][1][2]
        got = UInt8[]
        for chunk in link
            append!(got, chunk)
        end
        @test got == blob && link.sha256 == sha
        @test metrics(client)["downloads"] == 5  # the link never read was never fetched
        close(sub)
        @test next_streamed(sub) === nothing
        close(client)
    end

    @testset "a streamed link with other bytes: CHECKSUM_MISMATCH, and no file" begin
        store = Dict{String,Vector{UInt8}}()
        function upload(server, name, bytes)
            url = "$(server)/$(length(store))/$(name)"
            store[url] = bytes
            return Dict("status" => 200, "url" => url)
        end
        # The stored bytes with their first flipped: the same size, another sha256.
        download(url, retry_args...) = (bytes = copy(store[url]); bytes[1] = ~bytes[1]; bytes)
        client = connect(URL; size_threshold=10, fileserver_url="mem://store", fileserver_upload_handler=upload,
                         fileserver_download_handler=download)
        sub = subscribe(client, "jl.streamed.forged")
        for _ in 1:2
            smartsend("jl.streamed.forged", [("big", rand(UInt8, 1000), "binary")]; client=client)
        end
        link = next_streamed(sub; timeout=10.0)["payloads"][1][2]
        err = caught(() -> read(link))
        @test err isa NATSBridgeError && err.code === :CHECKSUM_MISMATCH && occursin("\"big\"", err.message)
        @test caught(() -> read(link)) === err && link.sha256 === nothing  # later reads: the same error
        dir = mktempdir()
        link = next_streamed(sub; timeout=10.0)["payloads"][1][2]
        err = caught(() -> save(link, joinpath(dir, "forged.bin")))
        @test err isa NATSBridgeError && err.code === :CHECKSUM_MISMATCH
        @test isempty(readdir(dir))  # neither the file nor its .partial
        @test metrics(client)["checksum_failures"] == 2
        close(sub)
        close(client)
    end

    @testset "request, reply and reply_error" begin
        client = connect(URL)
        sub = subscribe(client, "jl.service")
        responder = @async for req in sub
            question = req["payloads"][1][2]
            if question == "fail"
                reply_error(client, req, :DOWNLOAD_FAILED, "the responder says no")
            else
                reply(client, req, [("answer", question, "text")]; msg_purpose="ACK")
            end
            question == "fail" && break
        end
        answer = request(client, "jl.service", [("q", "ping", "text")]; timeout=5.0, sender_name="asker")
        @test answer["payloads"] == [("answer", "ping", "text")]
        @test answer["msg_purpose"] == "ACK" && answer["receiver_name"] == "asker"
        err = caught(() -> request(client, "jl.service", [("q", "fail", "text")]; timeout=5.0))
        @test err isa NATSBridgeError && err.code === :DOWNLOAD_FAILED && occursin("the responder says no", err.message)
        wait(responder)
        err = caught(() -> reply_error(client, Dict("correlation_id" => "c"), :NO_SUCH_CODE, "x"))
        @test err isa NATSBridgeError && err.code === :INVALID_ARGUMENT
        err = caught(() -> request(client, "jl.nobody", [("q", "?", "text")]; timeout=1.0))
        @test err isa NATSBridgeError && err.code === :TIMEOUT
        close(sub)
        close(client)
    end

    @testset "errors carry the core's codes" begin
        client = connect(URL)
        err = caught(() -> smartsend("jl.bad", [("x", "1", "spreadsheet")]; client=client))
        @test err isa NATSBridgeError && err.code === :INVALID_PAYLOAD_TYPE
        err = caught(() -> smartreceive("{not json"; client=client))
        @test err isa NATSBridgeError && err.code === :INVALID_ENVELOPE
        err = caught(() -> smartsend("jl.bad", [("x", "1", "text")]; client=client, no_such_option=1))
        @test err isa NATSBridgeError && err.code === :INVALID_ARGUMENT
        for bad in ((; bogus=1), (; connect_timeout_ms=500), (; require_tls=true), (; connect_timeout=-1))
            err = caught(() -> connect(URL; bad...))
            @test err isa NATSBridgeError && err.code === :INVALID_ARGUMENT
        end
        err = caught(() -> connect("nats://127.0.0.1:1"; connect_timeout=0.5, max_reconnect_attempts=0))
        @test err isa NATSBridgeError && err.code === :NATS_CONNECTION_FAILED
        close(client)
    end

    @testset "durable delivery (JetStream mode)" begin
        stream = "JL$(getpid())"
        client = connect(URL; jetstream=true)
        summary = add_stream(client, stream; storage="memory", max_age=600, duplicate_window=60)
        @test summary["name"] == stream && summary["subjects"] == ["$(stream).>"]
        @test summary["max_age"] == 600 && summary["dead_letter_stream"] == "$(stream)_DEAD_LETTER"
        for (bad, code) in (((; max_age_ms=1000), :INVALID_ARGUMENT), ((; retention="queue"), :INVALID_ARGUMENT),
                            ((; max_age=7200), :INVALID_ARGUMENT))  # longer than the link TTL (1 h)
            err = caught(() -> add_stream(client, stream; bad...))
            @test err isa NATSBridgeError && err.code === code
        end
        for n in 1:3
            env, json = smartsend("$(stream).orders", [("order", "order $(n)", "text")]; client=client)
            @test env["pub_ack"]["stream"] == stream && env["pub_ack"]["sequence"] == n
            @test env["pub_ack"]["duplicate"] == false && occursin("\"pub_ack\"", json)
        end
        err = caught(() -> smartsend("jl.nostream", [("x", "1", "text")]; client=client))
        @test err isa NATSBridgeError && err.code === :INVALID_ARGUMENT

        consumer = consume(client, stream, "worker"; ack_wait=10, nak_delay=0.1, batch=10)
        d1 = next(consumer; timeout=10.0)
        @test d1 isa Delivery
        @test d1.info["stream_sequence"] == 1 && d1.info["delivered"] == 1 && !d1.info["redelivered"]
        @test d1.envelope["payloads"] == [("order", "order 1", "text")]
        @test d1.envelope["subject"] == "$(stream).orders" && d1.envelope["error"] === nothing
        nak(d1)
        for settle in (ack, nak, term, in_progress)
            err = caught(() -> settle(d1))
            @test err isa NATSBridgeError && err.code === :INVALID_ARGUMENT
        end
        seen = Set{Tuple{Int,Int}}()
        for d in consumer
            push!(seen, (d.info["stream_sequence"], d.info["delivered"]))
            in_progress(d)
            d.info["stream_sequence"] == 3 ? term(d) : ack(d)
            length(seen) == 3 && break
        end
        @test seen == Set([(1, 2), (2, 1), (3, 1)])
        err = caught(() -> next(consumer; timeout=0.3))
        @test err isa NATSBridgeError && err.code === :TIMEOUT
        err = caught(() -> consume(client, "JLNOSUCHSTREAM", "worker"))
        @test err isa NATSBridgeError && err.code === :INVALID_ARGUMENT

        report = sweep_links(client, stream; min_age=0)
        @test report["stream"] == stream && report["dry_run"] && isempty(report["orphans"])
        close(consumer)
        @test next(consumer) === nothing
        close(client)
    end

    @testset "the seeds' handlers" begin
        store = Dict{String,Vector{UInt8}}()
        calls = []
        function upload(server, name, bytes)
            url = "$(server)/$(length(store))/$(name)"
            store[url] = bytes
            return Dict("status" => 200, "url" => url)
        end
        function download(url, max_retries, base_delay_ms, max_delay_ms, correlation_id)
            push!(calls, (max_retries, base_delay_ms, max_delay_ms, correlation_id))
            return store[url]
        end
        client = connect(URL; size_threshold=10, fileserver_url="mem://store", max_retries=3, base_delay=0.05,
                         max_delay=0.4, fileserver_upload_handler=upload, fileserver_download_handler=download)
        env, json = smartsend("jl.handlers", [("big", rand(UInt8, 100), "binary")]; client=client)
        @test occursin("mem://store/0/big", json)
        decoded = smartreceive(json; client=client)
        @test decoded["payloads"][1][2] == store["mem://store/0/big"]
        @test decoded["transports"] == ["link"]
        @test calls == [(3, 50, 400, env["correlation_id"])]
        # A per-message upload handler, in the one-call style too.
        mine(server, name, bytes) = "mem://mine/$(name)"
        env, json = smartsend("jl.handlers", [("big", rand(UInt8, 100), "binary")]; size_threshold=10,
                              fileserver_upload_handler=mine)
        @test occursin("mem://mine/big", json)
        close(client)
    end
end
