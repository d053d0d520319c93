# Tests of NATSBridge.jl against a real nats-server with JetStream (NATS_URL) and libnatsbridge
# (NATSBRIDGE_LIB). Julia is not installed on the project's CI machines: there these files are
# parsed and their ccalls checked against the header (scripts/check.sh); run them with
# `NATS_URL=... NATSBRIDGE_LIB=... julia --project -e 'using Pkg; Pkg.test()'` where Julia is.
using Test
using DataFrames
using NATSBridge

const URL = get(ENV, "NATS_URL", "nats://127.0.0.1:4222")

function receive_one(sub; timeout=5.0)
    deadline = time() + timeout
    while time() < deadline
        isready(sub.channel) && return take!(sub)
        sleep(0.01)
    end
    error("no message within $(timeout) s")
end

@testset "NATSBridge.jl" begin
    @testset "every payload type, direct and link" begin
        for (threshold, transport) in ((500_000, "direct"), (0, "link"))
            client = connect(URL; size_threshold=threshold)
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
            msg = receive_one(sub)
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
            close(client)
        end
    end

    @testset "smartreceive of raw bytes" begin
        env, json = smartsend("jl.raw", [("n", "1", "text")]; broker_url=URL)
        decoded = smartreceive(Vector{UInt8}(codeunits(json)); broker_url=URL)
        @test decoded["correlation_id"] == env["correlation_id"]
        @test decoded["payloads"] == [("n", "1", "text")]
    end

    @testset "errors carry the core's codes" begin
        client = connect(URL)
        err = try
            smartsend("jl.bad", [("x", "1", "spreadsheet")]; client=client)
            nothing
        catch e
            e
        end
        @test err isa NATSBridgeError && err.code === :INVALID_PAYLOAD_TYPE
        err = try
            request(client, "jl.nobody", [("q", "?", "text")]; timeout=1)
            nothing
        catch e
            e
        end
        @test err isa NATSBridgeError && err.code === :TIMEOUT
        err = try
            smartreceive("{not json"; client=client)
            nothing
        catch e
            e
        end
        @test err isa NATSBridgeError && err.code === :INVALID_ENVELOPE
        @test_throws NATSBridgeError connect("nats://127.0.0.1:1"; connect_timeout_ms=500, max_reconnects=0)
        close(client)
    end

    @testset "custom handlers" begin
        store = Dict{String,Vector{UInt8}}()
        upload(server, name, bytes) = (url = "mem://store/$(length(store))/$(name)"; store[url] = bytes; Dict("url" => url))
        download(url, size, cid) = store[url]
        client = connect(URL; size_threshold=10, handler_url_prefix="mem://store/",
                         fileserver_upload_handler=upload, fileserver_download_handler=download)
        env, json = smartsend("jl.handlers", [("big", rand(UInt8, 100), "binary")]; client=client)
        @test occursin("mem://store/0/big", json)
        decoded = smartreceive(json; client=client)
        @test decoded["payloads"][1][2] == store["mem://store/0/big"]
        @test decoded["transports"] == ["link"]
        close(client)
    end
end
