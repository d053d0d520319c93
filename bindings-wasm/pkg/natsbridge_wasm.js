/* @ts-self-types="./natsbridge_wasm.d.ts" */

/**
 * A connection's settings as core resolves them, and what follows from them: the sender, the
 * threshold, and (after `connected`) the link sources of receives.
 */
export class Config {
    __destroy_into_raw() {
        const ptr = this.__wbg_ptr;
        this.__wbg_ptr = 0;
        ConfigFinalization.unregister(this);
        return ptr;
    }
    free() {
        const ptr = this.__destroy_into_raw();
        __wbg_call_guard();
        wasm.__wbg_config_free(ptr, 0);

    }
    /**
     * JetStream mode: `smartsend` publishes durably (the `jetstream` option).
     * @returns {boolean}
     */
    get jetstream() {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.config_jetstream(this.__wbg_ptr);
        return ret !== 0;
    }
    /**
     * The options of nats.js `wsconnect` (INVALID_ARGUMENT when no server is named: a page has
     * no default server).
     * @returns {any}
     */
    natsOptions() {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.config_natsOptions(this.__wbg_ptr);
        if (ret[2]) {
            throw takeFromExternrefTable0(ret[1]);
        }
        return takeFromExternrefTable0(ret[0]);
    }
    /**
     * `options`: connection options by core's names (camelCase or snake_case), durations in
     * milliseconds. `sender_id`: the id to keep (a restarted core rebuilds a connection's config).
     * @param {any} options
     * @param {string | null} [sender_id]
     */
    constructor(options, sender_id) {
        var ptr0 = isLikeNone(sender_id) ? 0 : passStringToWasm0(sender_id, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        var len0 = WASM_VECTOR_LEN;
        let ret;
        __wbg_call_guard();
        ret = wasm.config_new(options, ptr0, len0);
        if (ret[2]) {
            throw takeFromExternrefTable0(ret[1]);
        }
        this.__wbg_ptr = ret[0];
        Object.defineProperty(this, '__wbg_inst', { value: __wbg_instance_id, writable: true });
        ConfigFinalization.register(this, { ptr: ret[0], instance: __wbg_instance_id }, this);
        return this;
    }
    /**
     * The object store as @nats-io/obj takes it: `{bucket, ttl (ns, the bucket's max age when it
     * is created), replicas (when it is created), chunkSize}`.
     * @returns {any}
     */
    objectStore() {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.config_objectStore(this.__wbg_ptr);
        return ret;
    }
    /**
     * @returns {string}
     */
    get senderId() {
        let deferred1_0;
        let deferred1_1;
        try {
            if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
                throw new Error('Invalid stale object from previous Wasm instance');
            }
            let ret;
            __wbg_call_guard();
            ret = wasm.config_senderId(this.__wbg_ptr);
            deferred1_0 = ret[0];
            deferred1_1 = ret[1];
            return getStringFromWasm0(ret[0], ret[1]);
        } finally {
            __wbg_call_guard();
            wasm.__wbindgen_free(deferred1_0, deferred1_1, 1);
        }
    }
    /**
     * @param {boolean} jetstream
     */
    setJetStream(jetstream) {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.config_setJetStream(this.__wbg_ptr, jetstream);
        if (ret[1]) {
            throw takeFromExternrefTable0(ret[0]);
        }
    }
    /**
     * The settings as text: equal settings, equal keys (the one-call style's shared connections).
     * @returns {string}
     */
    get sharedKey() {
        let deferred1_0;
        let deferred1_1;
        try {
            if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
                throw new Error('Invalid stale object from previous Wasm instance');
            }
            let ret;
            __wbg_call_guard();
            ret = wasm.config_sharedKey(this.__wbg_ptr);
            deferred1_0 = ret[0];
            deferred1_1 = ret[1];
            return getStringFromWasm0(ret[0], ret[1]);
        } finally {
            __wbg_call_guard();
            wasm.__wbindgen_free(deferred1_0, deferred1_1, 1);
        }
    }
}
if (Symbol.dispose) Config.prototype[Symbol.dispose] = Config.prototype.free;

/**
 * One durable pull consumer as core's rules see it: its validated options, what to create it
 * with, and how its deliveries that fail to decode are settled.
 */
export class Consuming {
    __destroy_into_raw() {
        const ptr = this.__wbg_ptr;
        this.__wbg_ptr = 0;
        ConsumingFinalization.unregister(this);
        return ptr;
    }
    free() {
        const ptr = this.__destroy_into_raw();
        __wbg_call_guard();
        wasm.__wbg_consuming_free(ptr, 0);

    }
    /**
     * Whether `ack` waits for the server's confirmation, for a delivery with `links` link objects
     * to delete.
     * @param {number} links
     * @returns {boolean}
     */
    ackWaits(links) {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.consuming_ackWaits(this.__wbg_ptr, links);
        return ret !== 0;
    }
    /**
     * After the dead letter was published (`published`) or not: `{action: "term"}`, or `{action:
     * "nak", delayMs}` (a delivery is never terminated without its dead letter).
     * @param {boolean} published
     * @param {number} delivered
     * @returns {any}
     */
    afterDeadLetter(published, delivered) {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.consuming_afterDeadLetter(this.__wbg_ptr, published, delivered);
        return ret;
    }
    /**
     * The consumer as @nats-io/jetstream's `ConsumerConfig` takes it (durations in nanoseconds).
     * @returns {any}
     */
    consumerConfig() {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.consuming_consumerConfig(this.__wbg_ptr);
        return ret;
    }
    /**
     * Where this consumer's dead letters go.
     * @returns {string}
     */
    get deadLetterSubject() {
        let deferred1_0;
        let deferred1_1;
        try {
            if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
                throw new Error('Invalid stale object from previous Wasm instance');
            }
            let ret;
            __wbg_call_guard();
            ret = wasm.consuming_deadLetterSubject(this.__wbg_ptr);
            deferred1_0 = ret[0];
            deferred1_1 = ret[1];
            return getStringFromWasm0(ret[0], ret[1]);
        } finally {
            __wbg_call_guard();
            wasm.__wbindgen_free(deferred1_0, deferred1_1, 1);
        }
    }
    /**
     * Whether an ack deletes the delivery's link objects (then it waits for the server's
     * confirmation first).
     * @returns {boolean}
     */
    get deletesLinks() {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.consuming_deletesLinks(this.__wbg_ptr);
        return ret !== 0;
    }
    /**
     * A delivery's info from nats.js `JsMsg.info`, as `DeliveryInfo::to_json` writes it.
     * @param {any} info
     * @returns {any}
     */
    deliveryInfo(info) {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.consuming_deliveryInfo(this.__wbg_ptr, info);
        return ret;
    }
    /**
     * @returns {string}
     */
    get durable() {
        let deferred1_0;
        let deferred1_1;
        try {
            if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
                throw new Error('Invalid stale object from previous Wasm instance');
            }
            let ret;
            __wbg_call_guard();
            ret = wasm.consuming_durable(this.__wbg_ptr);
            deferred1_0 = ret[0];
            deferred1_1 = ret[1];
            return getStringFromWasm0(ret[0], ret[1]);
        } finally {
            __wbg_call_guard();
            wasm.__wbindgen_free(deferred1_0, deferred1_1, 1);
        }
    }
    /**
     * How often a delivery being decoded is reported in progress: every `ack_wait / 2`.
     * @returns {number}
     */
    get keepaliveMs() {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.consuming_keepaliveMs(this.__wbg_ptr);
        return ret;
    }
    /**
     * `options`: core's consume option names (camelCase or snake_case), durations in ms.
     * INVALID_ARGUMENT for a bad name or setting, or redeliveries that could outlive the links.
     * @param {Config} config
     * @param {any} stream
     * @param {any} durable
     * @param {any} options
     */
    constructor(config, stream, durable, options) {
        _assertClass(config, Config);
        if ((config).__wbg_inst !== undefined && (config).__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.consuming_new(config.__wbg_ptr, stream, durable, options);
        if (ret[2]) {
            throw takeFromExternrefTable0(ret[1]);
        }
        this.__wbg_ptr = ret[0];
        Object.defineProperty(this, '__wbg_inst', { value: __wbg_instance_id, writable: true });
        ConsumingFinalization.register(this, { ptr: ret[0], instance: __wbg_instance_id }, this);
        return this;
    }
    /**
     * The options of nats.js `consumer.consume()`: `{max_messages: batch, expires, idle_heartbeat}` (ms).
     * @returns {any}
     */
    pullOptions() {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.consuming_pullOptions(this.__wbg_ptr);
        return ret;
    }
    /**
     * The stream's retention policy, as the server reports it: a work-queue stream's link objects
     * are deleted after the final ack.
     * @param {string} retention
     */
    setRetention(retention) {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        const ptr0 = passStringToWasm0(retention, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        const len0 = WASM_VECTOR_LEN;
        __wbg_call_guard();
        wasm.consuming_setRetention(this.__wbg_ptr, ptr0, len0);
    }
    /**
     * How a delivery that failed to decode with `error` (a NATSBridgeError) on its `delivered`-th
     * delivery is settled: `{action: "nak", delayMs}`, or `{action: "deadLetter"}` (publish its
     * dead letter, then ask `afterDeadLetter`).
     * @param {any} error
     * @param {number} delivered
     * @returns {any}
     */
    settlement(error, delivered) {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.consuming_settlement(this.__wbg_ptr, error, delivered);
        return ret;
    }
    /**
     * The wait before pulling again after `stalls` failed or ended pulls in a row.
     * @param {number} stalls
     * @returns {number}
     */
    stallDelayMs(stalls) {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.consuming_stallDelayMs(this.__wbg_ptr, stalls);
        return ret;
    }
    /**
     * @returns {string}
     */
    get stream() {
        let deferred1_0;
        let deferred1_1;
        try {
            if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
                throw new Error('Invalid stale object from previous Wasm instance');
            }
            let ret;
            __wbg_call_guard();
            ret = wasm.consuming_stream(this.__wbg_ptr);
            deferred1_0 = ret[0];
            deferred1_1 = ret[1];
            return getStringFromWasm0(ret[0], ret[1]);
        } finally {
            __wbg_call_guard();
            wasm.__wbindgen_free(deferred1_0, deferred1_1, 1);
        }
    }
}
if (Symbol.dispose) Consuming.prototype[Symbol.dispose] = Consuming.prototype.free;

/**
 * One link payload's bytes on their way to the page. The host asks `open()` where to read
 * from, reports the answer's head (`httpHead` / `objectHead`), hands every chunk of the body to
 * `chunk` (which says how many of its first bytes were already delivered), and calls `end()`
 * when the body ended, or `failed(fact)` when the attempt broke. Each of these throws the
 * stream's error when it is final (DOWNLOAD_FAILED once the retries are spent, CHECKSUM_MISMATCH
 * for other bytes, URL_NOT_ALLOWED for a redirect out of the allowed origins), with the
 * message's correlation id; after it, or after `end()`, the reading is over.
 */
export class LinkReading {
    static __wrap(ptr) {
        const obj = Object.create(LinkReading.prototype);
        obj.__wbg_ptr = ptr;
        Object.defineProperty(obj, '__wbg_inst', { value: __wbg_instance_id, writable: true });

        LinkReadingFinalization.register(obj, { ptr, instance: __wbg_instance_id }, obj);
        return obj;
    }
    __destroy_into_raw() {
        const ptr = this.__wbg_ptr;
        this.__wbg_ptr = 0;
        LinkReadingFinalization.unregister(this);
        return ptr;
    }
    free() {
        const ptr = this.__destroy_into_raw();
        __wbg_call_guard();
        wasm.__wbg_linkreading_free(ptr, 0);

    }
    /**
     * A chunk of the body, checked as it arrives (CHECKSUM_MISMATCH once there are more bytes
     * than the size). Returns how many of its first bytes were already delivered by an earlier
     * attempt: deliver the rest.
     * @param {Uint8Array | number[]} bytes
     * @returns {number}
     */
    chunk(bytes) {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        const ptr0 = passArray8ToWasm0(bytes, wasm.__wbindgen_malloc);
        const len0 = WASM_VECTOR_LEN;
        let ret;
        __wbg_call_guard();
        ret = wasm.linkreading_chunk(this.__wbg_ptr, ptr0, len0);
        if (ret[2]) {
            throw takeFromExternrefTable0(ret[1]);
        }
        return ret[0] >>> 0;
    }
    /**
     * @returns {string}
     */
    get dataname() {
        let deferred1_0;
        let deferred1_1;
        try {
            if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
                throw new Error('Invalid stale object from previous Wasm instance');
            }
            let ret;
            __wbg_call_guard();
            ret = wasm.linkreading_dataname(this.__wbg_ptr);
            deferred1_0 = ret[0];
            deferred1_1 = ret[1];
            return getStringFromWasm0(ret[0], ret[1]);
        } finally {
            __wbg_call_guard();
            wasm.__wbindgen_free(deferred1_0, deferred1_1, 1);
        }
    }
    /**
     * The body ended: checks the size and the sha256 (the metadata's, and the object store's
     * own digest). Returns the bytes' hex sha256; CHECKSUM_MISMATCH otherwise.
     * @returns {string}
     */
    end() {
        let deferred2_0;
        let deferred2_1;
        try {
            if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
                throw new Error('Invalid stale object from previous Wasm instance');
            }
            let ret;
            __wbg_call_guard();
            ret = wasm.linkreading_end(this.__wbg_ptr);
            var ptr1 = ret[0];
            var len1 = ret[1];
            if (ret[3]) {
                ptr1 = 0; len1 = 0;
                throw takeFromExternrefTable0(ret[2]);
            }
            deferred2_0 = ptr1;
            deferred2_1 = len1;
            return getStringFromWasm0(ptr1, len1);
        } finally {
            __wbg_call_guard();
            wasm.__wbindgen_free(deferred2_0, deferred2_1, 1);
        }
    }
    /**
     * The attempt broke (`fact` as `Receiving.fetchFailed` takes it: `{network}` for a failed
     * request or a body cut off, `{digestMismatch}`, `{notFound}`, `{status, detail}`). Returns
     * when another attempt is due (`open()` again); throws the stream's error otherwise.
     * @param {any} fact
     */
    failed(fact) {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.linkreading_failed(this.__wbg_ptr, fact);
        if (ret[1]) {
            throw takeFromExternrefTable0(ret[0]);
        }
    }
    /**
     * The head of the HTTP answer (`status` undefined for an opaque redirect; `content_range`
     * undefined when the server does not expose it to the page). Returns `{payload: true}`: read
     * the body, each chunk through `chunk`; `{detail: n}`: an error answer, read at most `n` bytes
     * of it and report `failed({status, detail})`; or null: the attempt failed, `open()` again.
     * A `206` answers the range asked for: it starts where its `Content-Range` says (where it was
     * asked to when the page cannot read that header), never past the bytes delivered.
     * @param {number | null} [status]
     * @param {string | null} [location]
     * @param {number | null} [content_length]
     * @param {string | null} [content_range]
     * @returns {{ payload: true } | { detail: number } | null}
     */
    httpHead(status, location, content_length, content_range) {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        const val3 = +(isLikeNone(status) ? 0xFFFFFF : status);
        const val4 = +(isLikeNone(content_length) ? 0 : content_length);
        let ptr0, len0, ptr1, len1;
        try {
            ptr0 = isLikeNone(location) ? 0 : passStringToWasm0(location, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
            len0 = WASM_VECTOR_LEN;
            ptr1 = isLikeNone(content_range) ? 0 : passStringToWasm0(content_range, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
            len1 = WASM_VECTOR_LEN;
        } catch (e) {
            if (ptr1) { wasm.__wbindgen_free(ptr1, len1 * 1, 1); }
            if (ptr0) { wasm.__wbindgen_free(ptr0, len0 * 1, 1); }
            throw e;
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.linkreading_httpHead(this.__wbg_ptr, val3, ptr0, len0, !isLikeNone(content_length), val4, ptr1, len1);
        if (ret[2]) {
            throw takeFromExternrefTable0(ret[1]);
        }
        return takeFromExternrefTable0(ret[0]);
    }
    /**
     * The object's info: its `size` (against the envelope's: CHECKSUM_MISMATCH before a byte is
     * read) and `digest` (`SHA-256=<base64url>`, checked at the end). True: read its data from
     * the start, each chunk through `chunk`; false: the attempt failed, `open()` again.
     * @param {number} size
     * @param {string | null} [digest]
     * @returns {boolean}
     */
    objectHead(size, digest) {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        const val2 = +size;
        var ptr0 = isLikeNone(digest) ? 0 : passStringToWasm0(digest, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        var len0 = WASM_VECTOR_LEN;
        let ret;
        __wbg_call_guard();
        ret = wasm.linkreading_objectHead(this.__wbg_ptr, val2, ptr0, len0);
        if (ret[2]) {
            throw takeFromExternrefTable0(ret[1]);
        }
        return ret[0] !== 0;
    }
    /**
     * Where to read next: `{store: "object", bucket, name, delayMs, attempt}` (the object store
     * has no ranges: it is read from the start) or `{store: "http", url, range, delayMs,
     * attempt}` (`range`: the `Range` header asking for the bytes not delivered yet, or
     * undefined). Sleep `delayMs` first.
     * @returns {{ store: string; bucket?: string; name?: string; url?: string; range?: string; delayMs: number; attempt: number }}
     */
    open() {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.linkreading_open(this.__wbg_ptr);
        if (ret[2]) {
            throw takeFromExternrefTable0(ret[1]);
        }
        return takeFromExternrefTable0(ret[0]);
    }
    /**
     * @returns {string}
     */
    get payloadType() {
        let deferred1_0;
        let deferred1_1;
        try {
            if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
                throw new Error('Invalid stale object from previous Wasm instance');
            }
            let ret;
            __wbg_call_guard();
            ret = wasm.linkreading_payloadType(this.__wbg_ptr);
            deferred1_0 = ret[0];
            deferred1_1 = ret[1];
            return getStringFromWasm0(ret[0], ret[1]);
        } finally {
            __wbg_call_guard();
            wasm.__wbindgen_free(deferred1_0, deferred1_1, 1);
        }
    }
    /**
     * The hex sha256 of the bytes once `end()` checked them; undefined before.
     * @returns {string | undefined}
     */
    get sha256() {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.linkreading_sha256(this.__wbg_ptr);
        let v1;
        if (ret[0] !== 0) {
            v1 = getStringFromWasm0(ret[0], ret[1]);
            wasm.__wbindgen_free(ret[0], ret[1] * 1, 1);
        }
        return v1;
    }
    /**
     * The envelope's size of the payload.
     * @returns {number}
     */
    get size() {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.linkreading_size(this.__wbg_ptr);
        return ret;
    }
}
if (Symbol.dispose) LinkReading.prototype[Symbol.dispose] = LinkReading.prototype.free;

/**
 * One received message as core's receive machine: `step(config)` says what to do —
 * `{action: "fetch", id, store: "object" | "http", url, bucket, name, size, attempt, delayMs}`
 * (sleep delayMs, fetch, answer with `head`/`objectHead` and `fetched` or `fetchFailed`),
 * `{action: "wait"}` (hand back the next result) or `{action: "done"}` (the payloads are read
 * by `envelopeJson`, `dataname`, `payloadType`, `transport` and `value`).
 */
export class Receiving {
    __destroy_into_raw() {
        const ptr = this.__wbg_ptr;
        this.__wbg_ptr = 0;
        ReceivingFinalization.unregister(this);
        return ptr;
    }
    free() {
        const ptr = this.__destroy_into_raw();
        __wbg_call_guard();
        wasm.__wbg_receiving_free(ptr, 0);

    }
    /**
     * @returns {string}
     */
    get correlationId() {
        let deferred1_0;
        let deferred1_1;
        try {
            if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
                throw new Error('Invalid stale object from previous Wasm instance');
            }
            let ret;
            __wbg_call_guard();
            ret = wasm.receiving_correlationId(this.__wbg_ptr);
            deferred1_0 = ret[0];
            deferred1_1 = ret[1];
            return getStringFromWasm0(ret[0], ret[1]);
        } finally {
            __wbg_call_guard();
            wasm.__wbindgen_free(deferred1_0, deferred1_1, 1);
        }
    }
    /**
     * The envelope as JSON (direct payloads' inline data is null; link payloads keep their URL).
     * @returns {string}
     */
    envelopeJson() {
        let deferred1_0;
        let deferred1_1;
        try {
            if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
                throw new Error('Invalid stale object from previous Wasm instance');
            }
            let ret;
            __wbg_call_guard();
            ret = wasm.receiving_envelopeJson(this.__wbg_ptr);
            deferred1_0 = ret[0];
            deferred1_1 = ret[1];
            return getStringFromWasm0(ret[0], ret[1]);
        } finally {
            __wbg_call_guard();
            wasm.__wbindgen_free(deferred1_0, deferred1_1, 1);
        }
    }
    /**
     * The error an error reply (NACK) carries, with its code and correlation id; null for any
     * other message.
     * @returns {any}
     */
    errorReply() {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.receiving_errorReply(this.__wbg_ptr);
        return ret;
    }
    /**
     * Fetch `id` failed: `fact` is what the host saw — `{network: message}`, `{notFound:
     * message}`, `{digestMismatch: message}`, or `{status, detail: Uint8Array}` (the start of an
     * error answer's body). Core decides whether it is tried again.
     * @param {Config} config
     * @param {number} id
     * @param {any} fact
     */
    fetchFailed(config, id, fact) {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        _assertClass(config, Config);
        if ((config).__wbg_inst !== undefined && (config).__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        __wbg_call_guard();
        wasm.receiving_fetchFailed(this.__wbg_ptr, config.__wbg_ptr, id, fact);
    }
    /**
     * The bytes of fetch `id` (at most size + 1 read). `digest`: their sha256 when the host has
     * it, as lowercase hex (Web Crypto) or the object store's `SHA-256=<base64url>`; else core
     * hashes them.
     * @param {number} id
     * @param {Uint8Array | number[]} bytes
     * @param {string | null} [digest]
     */
    fetched(id, bytes, digest) {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        const val3 = +id;
        let ptr0, len0, ptr1, len1;
        try {
            ptr0 = passArray8ToWasm0(bytes, wasm.__wbindgen_malloc);
            len0 = WASM_VECTOR_LEN;
            ptr1 = isLikeNone(digest) ? 0 : passStringToWasm0(digest, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
            len1 = WASM_VECTOR_LEN;
        } catch (e) {
            if (ptr1) { wasm.__wbindgen_free(ptr1, len1 * 1, 1); }
            if (ptr0) { wasm.__wbindgen_free(ptr0, len0 * 1, 1); }
            throw e;
        }
        __wbg_call_guard();
        wasm.receiving_fetched(this.__wbg_ptr, val3, ptr0, len0, ptr1, len1);
    }
    /**
     * The head of fetch `id`'s HTTP answer: `status` (undefined for an opaque redirect), its
     * Location and announced length. Returns `{read, payload}`: read at most `read` bytes of the
     * body and answer `fetched(id, ...)` (payload true) or `fetchFailed(id, {status, detail})`;
     * or null: the answer is judged, read no more.
     * @param {Config} config
     * @param {number} id
     * @param {number | null} [status]
     * @param {string | null} [location]
     * @param {number | null} [content_length]
     * @returns {any}
     */
    head(config, id, status, location, content_length) {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        _assertClass(config, Config);
        if ((config).__wbg_inst !== undefined && (config).__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        const val2 = +id;
        const val3 = +(isLikeNone(status) ? 0xFFFFFF : status);
        const val4 = +(isLikeNone(content_length) ? 0 : content_length);
        var ptr0 = isLikeNone(location) ? 0 : passStringToWasm0(location, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        var len0 = WASM_VECTOR_LEN;
        let ret;
        __wbg_call_guard();
        ret = wasm.receiving_head(this.__wbg_ptr, config.__wbg_ptr, val2, val3, ptr0, len0, !isLikeNone(content_length), val4);
        return ret;
    }
    /**
     * Parses the message and checks every payload, within the config's receive limits.
     * @param {Uint8Array | number[]} message
     * @param {Config} config
     */
    constructor(message, config) {
        _assertClass(config, Config);
        if ((config).__wbg_inst !== undefined && (config).__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        const ptr0 = passArray8ToWasm0(message, wasm.__wbindgen_malloc);
        const len0 = WASM_VECTOR_LEN;
        let ret;
        __wbg_call_guard();
        ret = wasm.receiving_new(ptr0, len0, config.__wbg_ptr);
        if (ret[2]) {
            throw takeFromExternrefTable0(ret[1]);
        }
        this.__wbg_ptr = ret[0];
        Object.defineProperty(this, '__wbg_inst', { value: __wbg_instance_id, writable: true });
        ReceivingFinalization.register(this, { ptr: ret[0], instance: __wbg_instance_id }, this);
        return this;
    }
    /**
     * The size an object's info announces. Returns how many bytes of its data to read at most
     * (then answer `fetched`), or undefined: the fetch failed by it, read nothing.
     * @param {Config} config
     * @param {number} id
     * @param {number} size
     * @returns {number | undefined}
     */
    objectHead(config, id, size) {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        _assertClass(config, Config);
        if ((config).__wbg_inst !== undefined && (config).__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.receiving_objectHead(this.__wbg_ptr, config.__wbg_ptr, id, size);
        return ret[0] === 0 ? undefined : ret[1];
    }
    /**
     * The object-store objects the link payloads were read from, as `[{bucket, name}]` (the
     * objects a work-queue consumer deletes after the final ack).
     * @returns {Array<any>}
     */
    objectLinks() {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.receiving_objectLinks(this.__wbg_ptr);
        return ret;
    }
    /**
     * The payloads as `[dataname, value, payload_type]`: text → string, dictionary and
     * jsontable → their JSON value, arrowtable → its rows (with `rows`, spec/PROTOCOL.md §10.2)
     * or its IPC stream bytes, the byte types → Uint8Array.
     * @param {boolean} rows
     * @returns {Array<any>}
     */
    payloads(rows) {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.receiving_payloads(this.__wbg_ptr, rows);
        if (ret[2]) {
            throw takeFromExternrefTable0(ret[1]);
        }
        return takeFromExternrefTable0(ret[0]);
    }
    /**
     * What to do next (see the type's description), by the config's sources and limits.
     * @param {Config} config
     * @returns {any}
     */
    step(config) {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        _assertClass(config, Config);
        if ((config).__wbg_inst !== undefined && (config).__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.receiving_step(this.__wbg_ptr, config.__wbg_ptr);
        if (ret[2]) {
            throw takeFromExternrefTable0(ret[1]);
        }
        return takeFromExternrefTable0(ret[0]);
    }
    /**
     * For a receive whose links are read as streams (`sub.nextStreamed()`, spec/PROTOCOL.md
     * §8.3.2), instead of `step`: every link is checked against the config's sources and the
     * download cap (URL_NOT_ALLOWED, PAYLOAD_TOO_LARGE), and the direct payloads are decoded;
     * nothing is fetched. Returns `[envelopeJson, payloads,
     * transports]`: `payloads` as `payloads(rows)` gives them, except that a link payload's value
     * is the `LinkReading` its bytes go through. Ends this receive.
     * @param {Config} config
     * @param {boolean} rows
     * @returns {[string, Array<[string, any, string]>, string[]]}
     */
    streams(config, rows) {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        _assertClass(config, Config);
        if ((config).__wbg_inst !== undefined && (config).__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.receiving_streams(this.__wbg_ptr, config.__wbg_ptr, rows);
        if (ret[2]) {
            throw takeFromExternrefTable0(ret[1]);
        }
        return takeFromExternrefTable0(ret[0]);
    }
    /**
     * How each payload travelled: "direct" or "link".
     * @returns {string[]}
     */
    transports() {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.receiving_transports(this.__wbg_ptr);
        var v1 = getArrayJsValueFromWasm0(ret[0], ret[1]);
        wasm.__wbindgen_free(ret[0], ret[1] * 4, 4);
        return v1;
    }
}
if (Symbol.dispose) Receiving.prototype[Symbol.dispose] = Receiving.prototype.free;

/**
 * One smartsend (or reply) as core's send machine: the host adds the payloads, then asks
 * `step()` what to do — `{action: "upload", index, bucket, name}` (store `bytes(index)` as that
 * object and answer `uploaded` or `uploadFailed`), `{action: "wait"}` (hand back the next upload
 * result) or `{action: "publish"}` (publish `json()` to `subject`). An upload step of a durable
 * publish also carries `metadata`, the object metadata to store with it.
 */
export class Sending {
    static __wrap(ptr) {
        const obj = Object.create(Sending.prototype);
        obj.__wbg_ptr = ptr;
        Object.defineProperty(obj, '__wbg_inst', { value: __wbg_instance_id, writable: true });

        SendingFinalization.register(obj, { ptr, instance: __wbg_instance_id }, obj);
        return obj;
    }
    __destroy_into_raw() {
        const ptr = this.__wbg_ptr;
        this.__wbg_ptr = 0;
        SendingFinalization.unregister(this);
        return ptr;
    }
    free() {
        const ptr = this.__destroy_into_raw();
        __wbg_call_guard();
        wasm.__wbg_sending_free(ptr, 0);

    }
    /**
     * A payload given as JSON text (`JSON.stringify` of a dictionary, a jsontable's rows, or an
     * arrowtable's rows, which core builds into an IPC stream).
     * @param {string} dataname
     * @param {string} payload_type
     * @param {string} json
     */
    addJson(dataname, payload_type, json) {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        let ptr0, len0, ptr1, len1, ptr2, len2;
        try {
            ptr0 = passStringToWasm0(dataname, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
            len0 = WASM_VECTOR_LEN;
            ptr1 = passStringToWasm0(payload_type, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
            len1 = WASM_VECTOR_LEN;
            ptr2 = passStringToWasm0(json, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
            len2 = WASM_VECTOR_LEN;
        } catch (e) {
            if (ptr2) { wasm.__wbindgen_free(ptr2, len2 * 1, 1); }
            if (ptr1) { wasm.__wbindgen_free(ptr1, len1 * 1, 1); }
            if (ptr0) { wasm.__wbindgen_free(ptr0, len0 * 1, 1); }
            throw e;
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.sending_addJson(this.__wbg_ptr, ptr0, len0, ptr1, len1, ptr2, len2);
        if (ret[1]) {
            throw takeFromExternrefTable0(ret[0]);
        }
    }
    /**
     * A payload given as a string or bytes (Uint8Array: an arrowtable's IPC stream, or raw bytes).
     * @param {string} dataname
     * @param {string} payload_type
     * @param {any} value
     */
    add(dataname, payload_type, value) {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        let ptr0, len0, ptr1, len1;
        try {
            ptr0 = passStringToWasm0(dataname, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
            len0 = WASM_VECTOR_LEN;
            ptr1 = passStringToWasm0(payload_type, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
            len1 = WASM_VECTOR_LEN;
        } catch (e) {
            if (ptr1) { wasm.__wbindgen_free(ptr1, len1 * 1, 1); }
            if (ptr0) { wasm.__wbindgen_free(ptr0, len0 * 1, 1); }
            throw e;
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.sending_add(this.__wbg_ptr, ptr0, len0, ptr1, len1, value);
        if (ret[1]) {
            throw takeFromExternrefTable0(ret[0]);
        }
    }
    /**
     * Payload `index`'s serialized bytes: what the upload stores.
     * @param {number} index
     * @returns {Uint8Array}
     */
    bytes(index) {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.sending_bytes(this.__wbg_ptr, index);
        return ret;
    }
    /**
     * @returns {string}
     */
    get correlationId() {
        let deferred1_0;
        let deferred1_1;
        try {
            if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
                throw new Error('Invalid stale object from previous Wasm instance');
            }
            let ret;
            __wbg_call_guard();
            ret = wasm.sending_correlationId(this.__wbg_ptr);
            deferred1_0 = ret[0];
            deferred1_1 = ret[1];
            return getStringFromWasm0(ret[0], ret[1]);
        } finally {
            __wbg_call_guard();
            wasm.__wbindgen_free(deferred1_0, deferred1_1, 1);
        }
    }
    /**
     * @param {number} index
     * @returns {string}
     */
    dataname(index) {
        let deferred1_0;
        let deferred1_1;
        try {
            if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
                throw new Error('Invalid stale object from previous Wasm instance');
            }
            let ret;
            __wbg_call_guard();
            ret = wasm.sending_dataname(this.__wbg_ptr, index);
            deferred1_0 = ret[0];
            deferred1_1 = ret[1];
            return getStringFromWasm0(ret[0], ret[1]);
        } finally {
            __wbg_call_guard();
            wasm.__wbindgen_free(deferred1_0, deferred1_1, 1);
        }
    }
    /**
     * The dead letter of a delivery that can never decode: the seeds' error response (msg_purpose
     * NACK, the original's correlation id when readable, msg_id `dead-letter-<stream>-<sequence>`,
     * `error` naming where it came from) to the consumer's dead-letter subject, with the
     * original bytes as its one binary payload.
     * @param {Config} config
     * @param {Consuming} consuming
     * @param {string} subject
     * @param {Uint8Array | number[]} message
     * @param {any} error
     * @param {any} info
     * @param {number} max_payload
     * @returns {Sending}
     */
    static deadLetter(config, consuming, subject, message, error, info, max_payload) {
        _assertClass(config, Config);
        if ((config).__wbg_inst !== undefined && (config).__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        _assertClass(consuming, Consuming);
        if ((consuming).__wbg_inst !== undefined && (consuming).__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        const val3 = +max_payload;
        let ptr0, len0, ptr1, len1;
        try {
            ptr0 = passStringToWasm0(subject, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
            len0 = WASM_VECTOR_LEN;
            ptr1 = passArray8ToWasm0(message, wasm.__wbindgen_malloc);
            len1 = WASM_VECTOR_LEN;
        } catch (e) {
            if (ptr1) { wasm.__wbindgen_free(ptr1, len1 * 1, 1); }
            if (ptr0) { wasm.__wbindgen_free(ptr0, len0 * 1, 1); }
            throw e;
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.sending_deadLetter(config.__wbg_ptr, consuming.__wbg_ptr, ptr0, len0, ptr1, len1, error, info, val3);
        if (ret[2]) {
            throw takeFromExternrefTable0(ret[1]);
        }
        return Sending.__wrap(ret[0]);
    }
    /**
     * Publishes durably to `stream`: the link objects are tagged with the stream and the msg_id
     * (each upload step carries `metadata`).
     * @param {string} stream
     */
    durable(stream) {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        const ptr0 = passStringToWasm0(stream, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        const len0 = WASM_VECTOR_LEN;
        __wbg_call_guard();
        wasm.sending_durable(this.__wbg_ptr, ptr0, len0);
    }
    /**
     * The envelope JSON to publish, once `step()` said publish.
     * @returns {string}
     */
    json() {
        let deferred1_0;
        let deferred1_1;
        try {
            if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
                throw new Error('Invalid stale object from previous Wasm instance');
            }
            let ret;
            __wbg_call_guard();
            ret = wasm.sending_json(this.__wbg_ptr);
            deferred1_0 = ret[0];
            deferred1_1 = ret[1];
            return getStringFromWasm0(ret[0], ret[1]);
        } finally {
            __wbg_call_guard();
            wasm.__wbindgen_free(deferred1_0, deferred1_1, 1);
        }
    }
    /**
     * The envelope's msg_id: the `Nats-Msg-Id` of a durable publish.
     * @returns {string}
     */
    get msgId() {
        let deferred1_0;
        let deferred1_1;
        try {
            if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
                throw new Error('Invalid stale object from previous Wasm instance');
            }
            let ret;
            __wbg_call_guard();
            ret = wasm.sending_msgId(this.__wbg_ptr);
            deferred1_0 = ret[0];
            deferred1_1 = ret[1];
            return getStringFromWasm0(ret[0], ret[1]);
        } finally {
            __wbg_call_guard();
            wasm.__wbindgen_free(deferred1_0, deferred1_1, 1);
        }
    }
    /**
     * A message to `subject` with per-message `options`. `max_payload`: the server's, from its INFO.
     * @param {Config} config
     * @param {any} subject
     * @param {any} options
     * @param {number} max_payload
     */
    constructor(config, subject, options, max_payload) {
        _assertClass(config, Config);
        if ((config).__wbg_inst !== undefined && (config).__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.sending_new(config.__wbg_ptr, subject, options, max_payload);
        if (ret[2]) {
            throw takeFromExternrefTable0(ret[1]);
        }
        this.__wbg_ptr = ret[0];
        Object.defineProperty(this, '__wbg_inst', { value: __wbg_instance_id, writable: true });
        SendingFinalization.register(this, { ptr: ret[0], instance: __wbg_instance_id }, this);
        return this;
    }
    /**
     * The envelope JSON when the message is ready to publish as it is (no upload to make), in
     * the one call a message without links needs: a string, or `[json, headers]` when the
     * message carries trace headers (see `traceHeaders`); else undefined, and `step()` goes on
     * from the step this call took. An error ends the send, as `step()`'s does.
     * @returns {string | [string, [string, string][]] | undefined}
     */
    publishNow() {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.sending_publishNow(this.__wbg_ptr);
        if (ret[2]) {
            throw takeFromExternrefTable0(ret[1]);
        }
        return takeFromExternrefTable0(ret[0]);
    }
    /**
     * A NACK to `request` reporting `code` (one of the error codes) and `message`.
     * @param {Config} config
     * @param {any} request
     * @param {any} code
     * @param {any} message
     * @param {number} max_payload
     * @returns {Sending}
     */
    static replyError(config, request, code, message, max_payload) {
        _assertClass(config, Config);
        if ((config).__wbg_inst !== undefined && (config).__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.sending_replyError(config.__wbg_ptr, request, code, message, max_payload);
        if (ret[2]) {
            throw takeFromExternrefTable0(ret[1]);
        }
        return Sending.__wrap(ret[0]);
    }
    /**
     * A reply to `request` (an envelope from smartreceive or a subscription): to its reply_to,
     * else its NATS reply subject, with the header a reply takes unless `options` sets it.
     * @param {Config} config
     * @param {any} request
     * @param {any} options
     * @param {number} max_payload
     * @returns {Sending}
     */
    static reply(config, request, options, max_payload) {
        _assertClass(config, Config);
        if ((config).__wbg_inst !== undefined && (config).__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.sending_reply(config.__wbg_ptr, request, options, max_payload);
        if (ret[2]) {
            throw takeFromExternrefTable0(ret[1]);
        }
        return Sending.__wrap(ret[0]);
    }
    /**
     * What to do next (see the type's description). An error ends the send: publish nothing.
     * @returns {any}
     */
    step() {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.sending_step(this.__wbg_ptr);
        if (ret[2]) {
            throw takeFromExternrefTable0(ret[1]);
        }
        return takeFromExternrefTable0(ret[0]);
    }
    /**
     * Where the message goes.
     * @returns {string}
     */
    get subject() {
        let deferred1_0;
        let deferred1_1;
        try {
            if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
                throw new Error('Invalid stale object from previous Wasm instance');
            }
            let ret;
            __wbg_call_guard();
            ret = wasm.sending_subject(this.__wbg_ptr);
            deferred1_0 = ret[0];
            deferred1_1 = ret[1];
            return getStringFromWasm0(ret[0], ret[1]);
        } finally {
            __wbg_call_guard();
            wasm.__wbindgen_free(deferred1_0, deferred1_1, 1);
        }
    }
    /**
     * The NATS headers to publish with the message (spec/PROTOCOL.md §13.1), as core writes them
     * from the `trace_headers` option: `[[name, value], ...]`, lower-case names; undefined when
     * the message carries no trace context.
     * @returns {[string, string][] | undefined}
     */
    get traceHeaders() {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        let ret;
        __wbg_call_guard();
        ret = wasm.sending_traceHeaders(this.__wbg_ptr);
        return ret;
    }
    /**
     * @param {number} index
     * @param {string} message
     */
    uploadFailed(index, message) {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        const val2 = +index;
        const ptr0 = passStringToWasm0(message, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        const len0 = WASM_VECTOR_LEN;
        __wbg_call_guard();
        wasm.sending_uploadFailed(this.__wbg_ptr, val2, ptr0, len0);
    }
    /**
     * The upload of payload `index` is stored. `digest`: the object store's digest of the bytes
     * (`SHA-256=<base64url>`), when it has one; else core hashes them.
     * @param {number} index
     * @param {string | null} [digest]
     */
    uploaded(index, digest) {
        if (this.__wbg_inst !== undefined && this.__wbg_inst !== __wbg_instance_id) {
            throw new Error('Invalid stale object from previous Wasm instance');
        }
        const val2 = +index;
        var ptr0 = isLikeNone(digest) ? 0 : passStringToWasm0(digest, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        var len0 = WASM_VECTOR_LEN;
        __wbg_call_guard();
        wasm.sending_uploaded(this.__wbg_ptr, val2, ptr0, len0);
    }
}
if (Symbol.dispose) Sending.prototype[Symbol.dispose] = Sending.prototype.free;

export function __wbg_reset_state () {
    __wbg_instance_id++;
    cachedDataViewMemory0 = null;
    cachedUint32ArrayMemory0 = null;
    cachedUint8ArrayMemory0 = null;
    if (typeof numBytesDecoded !== 'undefined') numBytesDecoded = 0;
    if (typeof WASM_VECTOR_LEN !== 'undefined') WASM_VECTOR_LEN = 0;
    __wbg_reinit_scheduled = false;
    wasmInstance = new WebAssembly.Instance(wasmModule, __wbg_get_imports());
    wasm = wasmInstance.exports;
    wasm.__wbindgen_start();
}

/**
 * The one-call style's options (`smartsend(subject, data, {brokerUrl, ...})`) for a `purpose`
 * ("send" or "receive"): `broker_url` names the servers, per-message names go to the send, the
 * rest are connection options. Returns `{send, connect, key}`: `key` names the shared connection
 * of those connection options; null for a receive that names no server (it needs none).
 * @param {any} options
 * @param {string} purpose
 * @returns {any}
 */
export function callOptions(options, purpose) {
    const ptr0 = passStringToWasm0(purpose, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
    const len0 = WASM_VECTOR_LEN;
    let ret;
    __wbg_call_guard();
    ret = wasm.callOptions(options, ptr0, len0);
    if (ret[2]) {
        throw takeFromExternrefTable0(ret[1]);
    }
    return takeFromExternrefTable0(ret[0]);
}

/**
 * A message re-serialized as `Envelope::to_json` writes it (nulls and missing fields filled in).
 * @param {Uint8Array | number[]} message
 * @returns {string}
 */
export function canonicalEnvelopeJson(message) {
    let deferred3_0;
    let deferred3_1;
    try {
        const ptr0 = passArray8ToWasm0(message, wasm.__wbindgen_malloc);
        const len0 = WASM_VECTOR_LEN;
        let ret;
        __wbg_call_guard();
        ret = wasm.canonicalEnvelopeJson(ptr0, len0);
        var ptr2 = ret[0];
        var len2 = ret[1];
        if (ret[3]) {
            ptr2 = 0; len2 = 0;
            throw takeFromExternrefTable0(ret[2]);
        }
        deferred3_0 = ptr2;
        deferred3_1 = len2;
        return getStringFromWasm0(ptr2, len2);
    } finally {
        __wbg_call_guard();
        wasm.__wbindgen_free(deferred3_0, deferred3_1, 1);
    }
}

/**
 * Every consumer setting by its canonical name (`consume` options).
 * @returns {string[]}
 */
export function consumeOptionNames() {
    let ret;
    __wbg_call_guard();
    ret = wasm.consumeOptionNames();
    var v1 = getArrayJsValueFromWasm0(ret[0], ret[1]);
    wasm.__wbindgen_free(ret[0], ret[1] * 4, 4);
    return v1;
}

/**
 * @returns {number}
 */
export function defaultSizeThreshold() {
    let ret;
    __wbg_call_guard();
    ret = wasm.defaultSizeThreshold();
    return ret >>> 0;
}

/**
 * Core's error codes, in core's order.
 * @returns {string[]}
 */
export function errorCodes() {
    let ret;
    __wbg_call_guard();
    ret = wasm.errorCodes();
    var v1 = getArrayJsValueFromWasm0(ret[0], ret[1]);
    wasm.__wbindgen_free(ret[0], ret[1] * 4, 4);
    return v1;
}

/**
 * The `msg_purpose` values the seeds name.
 * @returns {string[]}
 */
export function msgPurposes() {
    let ret;
    __wbg_call_guard();
    ret = wasm.msgPurposes();
    var v1 = getArrayJsValueFromWasm0(ret[0], ret[1]);
    wasm.__wbindgen_free(ret[0], ret[1] * 4, 4);
    return v1;
}

/**
 * No stream captures `subject`: a durable send never falls back to core NATS.
 * @param {string} subject
 * @param {string} detail
 * @param {string} correlation_id
 * @returns {any}
 */
export function noStreamError(subject, detail, correlation_id) {
    let ptr0, len0, ptr1, len1, ptr2, len2;
    try {
        ptr0 = passStringToWasm0(subject, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        len0 = WASM_VECTOR_LEN;
        ptr1 = passStringToWasm0(detail, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        len1 = WASM_VECTOR_LEN;
        ptr2 = passStringToWasm0(correlation_id, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        len2 = WASM_VECTOR_LEN;
    } catch (e) {
        if (ptr2) { wasm.__wbindgen_free(ptr2, len2 * 1, 1); }
        if (ptr1) { wasm.__wbindgen_free(ptr1, len1 * 1, 1); }
        if (ptr0) { wasm.__wbindgen_free(ptr0, len0 * 1, 1); }
        throw e;
    }
    let ret;
    __wbg_call_guard();
    ret = wasm.noStreamError(ptr0, len0, ptr1, len1, ptr2, len2);
    return ret;
}

/**
 * A consumer on a stream that does not exist: INVALID_ARGUMENT.
 * @param {string} stream
 * @param {string} detail
 * @returns {any}
 */
export function noSuchStream(stream, detail) {
    let ptr0, len0, ptr1, len1;
    try {
        ptr0 = passStringToWasm0(stream, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        len0 = WASM_VECTOR_LEN;
        ptr1 = passStringToWasm0(detail, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        len1 = WASM_VECTOR_LEN;
    } catch (e) {
        if (ptr1) { wasm.__wbindgen_free(ptr1, len1 * 1, 1); }
        if (ptr0) { wasm.__wbindgen_free(ptr0, len0 * 1, 1); }
        throw e;
    }
    let ret;
    __wbg_call_guard();
    ret = wasm.noSuchStream(ptr0, len0, ptr1, len1);
    return ret;
}

/**
 * Every connection option by its canonical name (README "One vocabulary").
 * @returns {string[]}
 */
export function optionNames() {
    let ret;
    __wbg_call_guard();
    ret = wasm.optionNames();
    var v1 = getArrayJsValueFromWasm0(ret[0], ret[1]);
    wasm.__wbindgen_free(ret[0], ret[1] * 4, 4);
    return v1;
}

/**
 * What the PubAck of a durable publish says, as every binding hands it over.
 * @param {string} stream
 * @param {number} sequence
 * @param {boolean} duplicate
 * @returns {any}
 */
export function pubAck(stream, sequence, duplicate) {
    const val2 = +sequence;
    const val3 = +duplicate;
    const ptr0 = passStringToWasm0(stream, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
    const len0 = WASM_VECTOR_LEN;
    let ret;
    __wbg_call_guard();
    ret = wasm.pubAck(ptr0, len0, val2, val3);
    return ret;
}

/**
 * A failed durable publish attempt: `fact` is what nats.js reported — `{timeout: message}`,
 * `{noResponders: message}`, `{api: err_code, message}`, `{maxPayload: message}`, `{closed:
 * message}` or `{network: message}`; `elapsed_ms` since the first attempt began. Returns the ms to wait before publishing again with the same
 * msg_id, or throws the send's error (the failure cannot pass, the retries are spent, or the
 * connection is closed). As core's `Client::confirm_durable`.
 * @param {Config} config
 * @param {string} subject
 * @param {string} correlation_id
 * @param {number} attempt
 * @param {number} elapsed_ms
 * @param {any} fact
 * @param {boolean} open
 * @returns {number}
 */
export function publishRetry(config, subject, correlation_id, attempt, elapsed_ms, fact, open) {
    _assertClass(config, Config);
    if ((config).__wbg_inst !== undefined && (config).__wbg_inst !== __wbg_instance_id) {
        throw new Error('Invalid stale object from previous Wasm instance');
    }
    const val3 = +attempt;
    const val4 = +elapsed_ms;
    const val5 = +open;
    let ptr0, len0, ptr1, len1;
    try {
        ptr0 = passStringToWasm0(subject, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        len0 = WASM_VECTOR_LEN;
        ptr1 = passStringToWasm0(correlation_id, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        len1 = WASM_VECTOR_LEN;
    } catch (e) {
        if (ptr1) { wasm.__wbindgen_free(ptr1, len1 * 1, 1); }
        if (ptr0) { wasm.__wbindgen_free(ptr0, len0 * 1, 1); }
        throw e;
    }
    let ret;
    __wbg_call_guard();
    ret = wasm.publishRetry(config.__wbg_ptr, ptr0, len0, ptr1, len1, val3, val4, fact, val5);
    if (ret[2]) {
        throw takeFromExternrefTable0(ret[1]);
    }
    return ret[0];
}

/**
 * Decodes the messages laid end to end in `data` (message `i` ends at `ends[i]`) in one call,
 * for a subscription's messages that are already waiting, within the config's receive limits. Returns `[json, values]`: `json` is a
 * JSON array with one item per message, in order —
 * `[0, header, payloads, transports, sides]`: decoded. `header` is the envelope as
 * `Receiving::envelopeJson` gives it, with `payloads: []`; `payloads` the
 * `[dataname, value, payload_type]` items `Receiving::payloads` gives, except that for each
 * payload position listed in `sides` the value is an index into `values` (a Uint8Array, or a
 * long string);
 * `[1, code, message, correlation_id]`: the message failed to decode (correlation_id null
 * when the envelope could not be read);
 * `[2]`: it has link payloads, which only the receive machine (`Receiving`) can fetch.
 * @param {Config} config
 * @param {Uint8Array | number[]} data
 * @param {Uint32Array | number[]} ends
 * @param {boolean} rows
 * @returns {Array<any>}
 */
export function receiveBatch(config, data, ends, rows) {
    _assertClass(config, Config);
    if ((config).__wbg_inst !== undefined && (config).__wbg_inst !== __wbg_instance_id) {
        throw new Error('Invalid stale object from previous Wasm instance');
    }
    const val3 = +rows;
    let ptr0, len0, ptr1, len1;
    try {
        ptr0 = passArray8ToWasm0(data, wasm.__wbindgen_malloc);
        len0 = WASM_VECTOR_LEN;
        ptr1 = passArray32ToWasm0(ends, wasm.__wbindgen_malloc);
        len1 = WASM_VECTOR_LEN;
    } catch (e) {
        if (ptr1) { wasm.__wbindgen_free(ptr1, len1 * 4, 4); }
        if (ptr0) { wasm.__wbindgen_free(ptr0, len0 * 1, 1); }
        throw e;
    }
    let ret;
    __wbg_call_guard();
    ret = wasm.receiveBatch(config.__wbg_ptr, ptr0, len0, ptr1, len1, val3);
    return ret;
}

/**
 * Every per-message option by its canonical name.
 * @returns {string[]}
 */
export function sendOptionNames() {
    let ret;
    __wbg_call_guard();
    ret = wasm.sendOptionNames();
    var v1 = getArrayJsValueFromWasm0(ret[0], ret[1]);
    wasm.__wbindgen_free(ret[0], ret[1] * 4, 4);
    return v1;
}

/**
 * Called once by js/natsbridge.js with `NATSBridgeError` (constructor `(code, message, correlationId)`).
 * @param {Function} _class
 */
export function setErrorClass(_class) {
    __wbg_call_guard();
    wasm.setErrorClass(_class);
}

/**
 * Lowercase hex SHA-256.
 * @param {Uint8Array | number[]} bytes
 * @returns {string}
 */
export function sha256Hex(bytes) {
    let deferred2_0;
    let deferred2_1;
    try {
        const ptr0 = passArray8ToWasm0(bytes, wasm.__wbindgen_malloc);
        const len0 = WASM_VECTOR_LEN;
        let ret;
        __wbg_call_guard();
        ret = wasm.sha256Hex(ptr0, len0);
        deferred2_0 = ret[0];
        deferred2_1 = ret[1];
        return getStringFromWasm0(ret[0], ret[1]);
    } finally {
        __wbg_call_guard();
        wasm.__wbindgen_free(deferred2_0, deferred2_1, 1);
    }
}

/**
 * `stream add NAME`: the stream's settings (core's stream option names, camelCase or snake_case,
 * durations in ms) checked and resolved into `[streamConfig, deadLetterConfig | null]` for
 * jsm.streams.add/update. INVALID_ARGUMENT for a bad setting or a max_age that outlives the links.
 * @param {Config} config
 * @param {any} name
 * @param {any} options
 * @returns {Array<any>}
 */
export function streamConfigs(config, name, options) {
    _assertClass(config, Config);
    if ((config).__wbg_inst !== undefined && (config).__wbg_inst !== __wbg_instance_id) {
        throw new Error('Invalid stale object from previous Wasm instance');
    }
    let ret;
    __wbg_call_guard();
    ret = wasm.streamConfigs(config.__wbg_ptr, name, options);
    if (ret[2]) {
        throw takeFromExternrefTable0(ret[1]);
    }
    return takeFromExternrefTable0(ret[0]);
}

/**
 * Every stream setting by its canonical name (`addStream` options).
 * @returns {string[]}
 */
export function streamOptionNames() {
    let ret;
    __wbg_call_guard();
    ret = wasm.streamOptionNames();
    var v1 = getArrayJsValueFromWasm0(ret[0], ret[1]);
    wasm.__wbindgen_free(ret[0], ret[1] * 4, 4);
    return v1;
}

/**
 * What `addStream` returns, from the server's StreamInfo: core's `StreamSummary` (the CLI's
 * `stream add` output).
 * @param {any} info
 * @param {string | null} [dead_letter_stream]
 * @returns {any}
 */
export function streamSummary(info, dead_letter_stream) {
    var ptr0 = isLikeNone(dead_letter_stream) ? 0 : passStringToWasm0(dead_letter_stream, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
    var len0 = WASM_VECTOR_LEN;
    let ret;
    __wbg_call_guard();
    ret = wasm.streamSummary(info, ptr0, len0);
    if (ret[2]) {
        throw takeFromExternrefTable0(ret[1]);
    }
    return takeFromExternrefTable0(ret[0]);
}

/**
 * The trace context of a received message (spec/PROTOCOL.md §13.1) from the values of its
 * `traceparent`, `tracestate` and `baggage` headers ("" or undefined: absent), as the carrier
 * object envelopes carry as `trace_headers`; undefined without a well-formed traceparent. The
 * headers are advisory: a malformed one is dropped, never an error.
 * @param {string | null} [traceparent]
 * @param {string | null} [tracestate]
 * @param {string | null} [baggage]
 * @returns {{ traceparent: string; tracestate?: string; baggage?: string } | undefined}
 */
export function traceCarrier(traceparent, tracestate, baggage) {
    let ptr0, len0, ptr1, len1, ptr2, len2;
    try {
        ptr0 = isLikeNone(traceparent) ? 0 : passStringToWasm0(traceparent, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        len0 = WASM_VECTOR_LEN;
        ptr1 = isLikeNone(tracestate) ? 0 : passStringToWasm0(tracestate, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        len1 = WASM_VECTOR_LEN;
        ptr2 = isLikeNone(baggage) ? 0 : passStringToWasm0(baggage, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        len2 = WASM_VECTOR_LEN;
    } catch (e) {
        if (ptr2) { wasm.__wbindgen_free(ptr2, len2 * 1, 1); }
        if (ptr1) { wasm.__wbindgen_free(ptr1, len1 * 1, 1); }
        if (ptr0) { wasm.__wbindgen_free(ptr0, len0 * 1, 1); }
        throw e;
    }
    let ret;
    __wbg_call_guard();
    ret = wasm.traceCarrier(ptr0, len0, ptr1, len1, ptr2, len2);
    return ret;
}

/**
 * The connection options a page cannot use (INVALID_ARGUMENT when given).
 * @returns {string[]}
 */
export function unavailableOptions() {
    let ret;
    __wbg_call_guard();
    ret = wasm.unavailableOptions();
    var v1 = getArrayJsValueFromWasm0(ret[0], ret[1]);
    wasm.__wbindgen_free(ret[0], ret[1] * 4, 4);
    return v1;
}
function __wbg_get_imports() {
    const import0 = {
        __proto__: null,
        __wbg___wbindgen_boolean_get_4f1baf9a00be3c74: function(arg0) {
            const v = arg0;
            const ret = typeof(v) === 'boolean' ? v : undefined;
            return isLikeNone(ret) ? 0xFFFFFF : ret ? 1 : 0;
        },
        __wbg___wbindgen_debug_string_f249a2a76caa9a55: function(arg0, arg1) {
            const ret = debugString(arg1);
            const ptr1 = passStringToWasm0(ret, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
            const len1 = WASM_VECTOR_LEN;
            getDataViewMemory0().setInt32((arg0 >>> 0) + 4 * 1, len1, true);
            getDataViewMemory0().setInt32((arg0 >>> 0) + 4 * 0, ptr1, true);
        },
        __wbg___wbindgen_is_null_c22311b1cc228e3a: function(arg0) {
            const ret = arg0 === null;
            return ret;
        },
        __wbg___wbindgen_is_object_8b968c3ab8e96595: function(arg0) {
            const val = arg0;
            const ret = typeof(val) === 'object' && val !== null;
            return ret;
        },
        __wbg___wbindgen_is_undefined_be5b34249ff1fc15: function(arg0) {
            const ret = arg0 === undefined;
            return ret;
        },
        __wbg___wbindgen_number_get_934b640d0889af78: function(arg0, arg1) {
            const obj = arg1;
            const ret = typeof(obj) === 'number' ? obj : undefined;
            getDataViewMemory0().setFloat64((arg0 >>> 0) + 8 * 1, isLikeNone(ret) ? 0 : ret, true);
            getDataViewMemory0().setInt32((arg0 >>> 0) + 4 * 0, !isLikeNone(ret), true);
        },
        __wbg___wbindgen_string_get_7ce8eee7fd327545: function(arg0, arg1) {
            const obj = arg1;
            const ret = typeof(obj) === 'string' ? obj : undefined;
            var ptr1 = isLikeNone(ret) ? 0 : passStringToWasm0(ret, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
            var len1 = WASM_VECTOR_LEN;
            getDataViewMemory0().setInt32((arg0 >>> 0) + 4 * 1, len1, true);
            getDataViewMemory0().setInt32((arg0 >>> 0) + 4 * 0, ptr1, true);
        },
        __wbg___wbindgen_throw_4c88d8bf264fd984: function(arg0, arg1) {
            throw new Error(getStringFromWasm0(arg0, arg1));
        },
        __wbg_construct_8670bb4c2b062969: function() { return handleError(function (arg0, arg1) {
            const ret = Reflect.construct(arg0, arg1);
            return ret;
        }, arguments); },
        __wbg_entries_7bb1459bd9b5c2b9: function(arg0) {
            const ret = Object.entries(arg0);
            return ret;
        },
        __wbg_from_eac91875c8a5ffa4: function(arg0) {
            const ret = Array.from(arg0);
            return ret;
        },
        __wbg_getRandomValues_66707e3bcfdab577: function() { return handleError(function (arg0, arg1) {
            globalThis.crypto.getRandomValues(getArrayU8FromWasm0(arg0, arg1));
        }, arguments); },
        __wbg_get_2080c49015e35254: function() { return handleError(function (arg0, arg1) {
            const ret = Reflect.get(arg0, arg1);
            return ret;
        }, arguments); },
        __wbg_get_d7176cfb76d71114: function(arg0, arg1) {
            const ret = arg0[arg1 >>> 0];
            return ret;
        },
        __wbg_get_unchecked_e6325ad374eff861: function(arg0, arg1) {
            const ret = arg0[arg1 >>> 0];
            return ret;
        },
        __wbg_instanceof_ArrayBuffer_12cdaa4161423e6b: function(arg0) {
            let result;
            try {
                result = arg0 instanceof ArrayBuffer;
            } catch (_) {
                result = false;
            }
            const ret = result;
            return ret;
        },
        __wbg_instanceof_Uint8Array_d7aeb0dcb3108fea: function(arg0) {
            let result;
            try {
                result = arg0 instanceof Uint8Array;
            } catch (_) {
                result = false;
            }
            const ret = result;
            return ret;
        },
        __wbg_isArray_bcf1376d0d732d08: function(arg0) {
            const ret = Array.isArray(arg0);
            return ret;
        },
        __wbg_isView_7c4f5a7c257b3a84: function(arg0) {
            const ret = ArrayBuffer.isView(arg0);
            return ret;
        },
        __wbg_length_186163212ffe79c3: function(arg0) {
            const ret = arg0.length;
            return ret;
        },
        __wbg_length_b03a0fabb109b1e9: function(arg0) {
            const ret = arg0.length;
            return ret;
        },
        __wbg_linkreading_new: function(arg0) {
            const ret = LinkReading.__wrap(arg0);
            return ret;
        },
        __wbg_new_37eb45aaf5eeb820: function() {
            const ret = new Array();
            return ret;
        },
        __wbg_new_787b9fb330d55d78: function(arg0, arg1) {
            const ret = new Error(getStringFromWasm0(arg0, arg1));
            return ret;
        },
        __wbg_new_cd4348290afae586: function() {
            const ret = new Object();
            return ret;
        },
        __wbg_new_from_slice_b8daf545a41c6aa0: function(arg0, arg1) {
            const ret = new Uint8Array(getArrayU8FromWasm0(arg0, arg1));
            return ret;
        },
        __wbg_now_463ac581d2fc7ea3: function() {
            const ret = Date.now();
            return ret;
        },
        __wbg_of_4cc373bef1f715a4: function(arg0, arg1, arg2) {
            const ret = Array.of(arg0, arg1, arg2);
            return ret;
        },
        __wbg_of_e7ea0fcd535c1444: function(arg0, arg1) {
            const ret = Array.of(arg0, arg1);
            return ret;
        },
        __wbg_parse_c3f72b5a24f83c01: function() { return handleError(function (arg0, arg1) {
            const ret = JSON.parse(getStringFromWasm0(arg0, arg1));
            return ret;
        }, arguments); },
        __wbg_prototypesetcall_13162965d1fe7aa3: function(arg0, arg1, arg2) {
            Uint8Array.prototype.set.call(getArrayU8FromWasm0(arg0, arg1), arg2);
        },
        __wbg_push_c9f4893fc209f768: function(arg0, arg1) {
            const ret = arg0.push(arg1);
            return ret;
        },
        __wbg_set_2793479888329cb6: function() { return handleError(function (arg0, arg1, arg2) {
            const ret = Reflect.set(arg0, arg1, arg2);
            return ret;
        }, arguments); },
        __wbindgen_generic_0000000000000001: function(arg0) {
            // Cast intrinsic for `F64 -> Externref`.
            const ret = arg0;
            return ret;
        },
        __wbindgen_generic_0000000000000002: function(arg0, arg1) {
            // Cast intrinsic for `Ref(String) -> Externref`.
            const ret = getStringFromWasm0(arg0, arg1);
            return ret;
        },
        __wbindgen_init_externref_table: function() {
            const table = wasm.__wbindgen_externrefs;
            table.set(0, undefined);
            table.set(1024, undefined);
            table.set(1025, null);
            table.set(1026, true);
            table.set(1027, false);
        },
    };
    return {
        __proto__: null,
        "./natsbridge_wasm_bg.js": import0,
    };
}

function __wbg_call_guard() {
    if (__wbg_reinit_scheduled) {
        __wbg_reset_state();
        return;
    }
}


let __wbg_instance_id = 0;
const ConfigFinalization = (typeof FinalizationRegistry === 'undefined')
    ? { register: () => {}, unregister: () => {} }
    : new FinalizationRegistry(({ ptr, instance }) => {
    if (instance === __wbg_instance_id) wasm.__wbg_config_free(ptr, 1);
});
const ConsumingFinalization = (typeof FinalizationRegistry === 'undefined')
    ? { register: () => {}, unregister: () => {} }
    : new FinalizationRegistry(({ ptr, instance }) => {
    if (instance === __wbg_instance_id) wasm.__wbg_consuming_free(ptr, 1);
});
const LinkReadingFinalization = (typeof FinalizationRegistry === 'undefined')
    ? { register: () => {}, unregister: () => {} }
    : new FinalizationRegistry(({ ptr, instance }) => {
    if (instance === __wbg_instance_id) wasm.__wbg_linkreading_free(ptr, 1);
});
const ReceivingFinalization = (typeof FinalizationRegistry === 'undefined')
    ? { register: () => {}, unregister: () => {} }
    : new FinalizationRegistry(({ ptr, instance }) => {
    if (instance === __wbg_instance_id) wasm.__wbg_receiving_free(ptr, 1);
});
const SendingFinalization = (typeof FinalizationRegistry === 'undefined')
    ? { register: () => {}, unregister: () => {} }
    : new FinalizationRegistry(({ ptr, instance }) => {
    if (instance === __wbg_instance_id) wasm.__wbg_sending_free(ptr, 1);
});

function addToExternrefTable0(obj) {
    const idx = wasm.__externref_table_alloc();
    wasm.__wbindgen_externrefs.set(idx, obj);
    return idx;
}

function _assertClass(instance, klass) {
    if (!(instance instanceof klass)) {
        throw new Error(`expected instance of ${klass.name}`);
    }
}

function debugString(val) {
    switch (typeof val) {
        // primitive types
        case 'number':
        case 'boolean':
        case 'undefined':
        return `${val}`;
        case 'string':
        return JSON.stringify(val);
        case 'bigint':
        return `${val}n`;
        case 'symbol':
        return val.description !== undefined
            ? `Symbol(${val.description})`
            : 'Symbol';
        case 'function':
        return typeof val.name === 'string' && val.name !== ''
            ? `Function(${val.name})`
            : 'Function';
        case 'object': {
            if (val === null) {
                return 'null';
            }
            // objects
            if (Array.isArray(val)) {
                return '[' + Array.from(val, debugString).join(', ') + ']';
            }
            // errors
            if (val instanceof Error) {
                return `${val.name}: ${val.message}\n${val.stack}`;
            }

            const toStringOutput = toString.call(val);
            // Test for built-in
            const className = /\[object ([^\]]+)\]/.exec(toStringOutput)?.[1];

            // Failed to match the standard '[object ClassName]'
            if (className === undefined) {
                return toStringOutput;
            }
            if (className === 'Object') {
                // we're a user defined class or Object
                // JSON.stringify avoids problems with cycles, and is generally much
                // easier than looping through ownProperties of `val`.
                try {
                    return 'Object(' + JSON.stringify(val) + ')';
                } catch (_) {
                    return 'Object';
                }
            }
            // TODO we could test for more things here, like `Set`s and `Map`s.
            return className;
        }
        // Per MDN: 'This list of values is exhaustive.'
        // https://developer.mozilla.org/en-US/docs/Web/JavaScript/Reference/Operators/typeof#description
    }
}

function getArrayJsValueFromWasm0(ptr, len) {
    ptr = ptr >>> 0;
    const mem = getDataViewMemory0();
    const result = [];
    for (let i = ptr; i < ptr + 4 * len; i += 4) {
        result.push(wasm.__wbindgen_externrefs.get(mem.getUint32(i, true)));
    }
    wasm.__externref_drop_slice(ptr, len);
    return result;
}

function getArrayU8FromWasm0(ptr, len) {
    ptr = ptr >>> 0;
    return getUint8ArrayMemory0().subarray(ptr / 1, ptr / 1 + len);
}

let cachedDataViewMemory0 = null;
function getDataViewMemory0() {
    if (cachedDataViewMemory0 === null || cachedDataViewMemory0.buffer.detached === true || (cachedDataViewMemory0.buffer.detached === undefined && cachedDataViewMemory0.buffer !== wasm.memory.buffer)) {
        cachedDataViewMemory0 = new DataView(wasm.memory.buffer);
    }
    return cachedDataViewMemory0;
}

function getStringFromWasm0(ptr, len) {
    ptr = ptr >>> 0;
    return decodeText(getUint8ArrayMemory0().subarray(ptr, ptr + len));
}

let cachedUint32ArrayMemory0 = null;
function getUint32ArrayMemory0() {
    if (cachedUint32ArrayMemory0 === null || cachedUint32ArrayMemory0.byteLength === 0) {
        cachedUint32ArrayMemory0 = new Uint32Array(wasm.memory.buffer);
    }
    return cachedUint32ArrayMemory0;
}

let cachedUint8ArrayMemory0 = null;
function getUint8ArrayMemory0() {
    if (cachedUint8ArrayMemory0 === null || cachedUint8ArrayMemory0.byteLength === 0) {
        cachedUint8ArrayMemory0 = new Uint8Array(wasm.memory.buffer);
    }
    return cachedUint8ArrayMemory0;
}

function handleError(f, args) {
    try {
        return f.apply(this, args);
    } catch (e) {
        const idx = addToExternrefTable0(e);
        wasm.__wbindgen_exn_store(idx);
    }
}

function isLikeNone(x) {
    return x === undefined || x === null;
}

function passArray32ToWasm0(arg, malloc) {
    const ptr = malloc(arg.length * 4, 4) >>> 0;
    getUint32ArrayMemory0().set(arg, ptr / 4);
    WASM_VECTOR_LEN = arg.length;
    return ptr;
}

function passArray8ToWasm0(arg, malloc) {
    const ptr = malloc(arg.length * 1, 1) >>> 0;
    getUint8ArrayMemory0().set(arg, ptr / 1);
    WASM_VECTOR_LEN = arg.length;
    return ptr;
}

function passStringToWasm0(arg, malloc, realloc) {
    if (realloc === undefined) {
        const buf = cachedTextEncoder.encode(arg);
        const ptr = malloc(buf.length, 1) >>> 0;
        getUint8ArrayMemory0().subarray(ptr, ptr + buf.length).set(buf);
        WASM_VECTOR_LEN = buf.length;
        return ptr;
    }

    let len = arg.length;
    let ptr = malloc(len, 1) >>> 0;

    const mem = getUint8ArrayMemory0();

    let offset = 0;

    for (; offset < len; offset++) {
        const code = arg.charCodeAt(offset);
        if (code > 0x7F) break;
        mem[ptr + offset] = code;
    }
    if (offset !== len) {
        if (offset !== 0) {
            arg = arg.slice(offset);
        }
        ptr = realloc(ptr, len, len = offset + arg.length * 3, 1) >>> 0;
        const view = getUint8ArrayMemory0().subarray(ptr + offset, ptr + len);
        const ret = cachedTextEncoder.encodeInto(arg, view);

        offset += ret.written;
        ptr = realloc(ptr, len, offset, 1) >>> 0;
    }

    WASM_VECTOR_LEN = offset;
    return ptr;
}

let __wbg_reinit_scheduled = false;

function takeFromExternrefTable0(idx) {
    const value = wasm.__wbindgen_externrefs.get(idx);
    wasm.__externref_table_dealloc(idx);
    return value;
}

let cachedTextDecoder = new TextDecoder('utf-8', { ignoreBOM: true });
cachedTextDecoder.decode();
const MAX_SAFARI_DECODE_BYTES = 2146435072;
let numBytesDecoded = 0;
function decodeText(bytes) {
    numBytesDecoded += bytes.length;
    if (numBytesDecoded >= MAX_SAFARI_DECODE_BYTES) {
        cachedTextDecoder = new TextDecoder('utf-8', { ignoreBOM: true });
        cachedTextDecoder.decode();
        numBytesDecoded = bytes.length;
    }
    return cachedTextDecoder.decode(bytes);
}

const cachedTextEncoder = new TextEncoder();

if (!('encodeInto' in cachedTextEncoder)) {
    cachedTextEncoder.encodeInto = function (arg, view) {
        const buf = cachedTextEncoder.encode(arg);
        view.set(buf);
        return {
            read: arg.length,
            written: buf.length
        };
    };
}

let WASM_VECTOR_LEN = 0;

let wasmModule, wasmInstance, wasm;
function __wbg_finalize_init(instance, module) {
    wasmInstance = instance;
    wasm = instance.exports;
    wasmModule = module;
    cachedDataViewMemory0 = null;
    cachedUint32ArrayMemory0 = null;
    cachedUint8ArrayMemory0 = null;
    wasm.__wbindgen_start();
    return wasm;
}

async function __wbg_load(module, imports) {
    if (typeof Response === 'function' && module instanceof Response) {
        if (!module.ok) {
            throw new Error(`failed to fetch Wasm: ${module.status} ${module.statusText} fetching '${module.url}'`);
        }

        if (typeof WebAssembly.instantiateStreaming === 'function') {
            try {
                return await WebAssembly.instantiateStreaming(module, imports);
            } catch (e) {
                const validResponse = expectedResponseType(module.type);

                if (validResponse && module.headers.get('Content-Type') !== 'application/wasm') {
                    console.warn("`WebAssembly.instantiateStreaming` failed because your server does not serve Wasm with `application/wasm` MIME type. Falling back to `WebAssembly.instantiate` which is slower. Original error:\n", e);

                } else { throw e; }
            }
        }

        const bytes = await module.arrayBuffer();
        return await WebAssembly.instantiate(bytes, imports);
    } else {
        const instance = await WebAssembly.instantiate(module, imports);

        if (instance instanceof WebAssembly.Instance) {
            return { instance, module };
        } else {
            return instance;
        }
    }

    function expectedResponseType(type) {
        switch (type) {
            case 'basic': case 'cors': case 'default': return true;
        }
        return false;
    }
}

function initSync(module) {
    if (wasm !== undefined) return wasm;


    if (module !== undefined) {
        if (Object.getPrototypeOf(module) === Object.prototype) {
            ({module} = module)
        } else {
            console.warn('using deprecated parameters for `initSync()`; pass a single object instead')
        }
    }

    const imports = __wbg_get_imports();
    if (!(module instanceof WebAssembly.Module)) {
        module = new WebAssembly.Module(module);
    }
    const instance = new WebAssembly.Instance(module, imports);
    return __wbg_finalize_init(instance, module);
}

let __wbg_init_promise;
async function __wbg_init(module_or_path) {
    if (wasm !== undefined) return wasm;
    if (__wbg_init_promise === undefined) {
        __wbg_init_promise = __wbg_init_once(module_or_path);
        __wbg_init_promise.catch(() => { __wbg_init_promise = undefined; });
    }
    return __wbg_init_promise;
}

async function __wbg_init_once(module_or_path) {

    if (module_or_path !== undefined) {
        if (Object.getPrototypeOf(module_or_path) === Object.prototype) {
            ({module_or_path} = module_or_path)
        } else {
            console.warn('using deprecated parameters for the initialization function; pass a single object instead')
        }
    }

    if (module_or_path === undefined) {
        module_or_path = new URL('natsbridge_wasm_bg.wasm', import.meta.url);
    }
    const imports = __wbg_get_imports();

    if (typeof module_or_path === 'string' || (typeof Request === 'function' && module_or_path instanceof Request) || (typeof URL === 'function' && module_or_path instanceof URL)) {
        module_or_path = fetch(module_or_path);
    }

    const { instance, module } = await __wbg_load(await module_or_path, imports);

    return __wbg_finalize_init(instance, module);
}

export { initSync, __wbg_init as default };
