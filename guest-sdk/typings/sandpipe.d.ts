// Types for sandpipe connectors: what `processEvent`, `composeWebhook` and the
// other special functions receive, and the globals the connector world offers.
// `sandpipe new` copies this file next to a new connector's index.ts, whose
// tsconfig.json adds TypeScript's WebWorker library for the web globals the
// world has (`URL`, `URLSearchParams`, `TextEncoder`, `atob`, `structuredClone`).
// It type-checks under `tsc --strict` with that library, with the DOM's, and
// with neither: globals they also declare (`console`, `crypto`, `fetch`) are
// declared so that they merge with them.

/** An event as it flows through the chain. `properties` may be missing (e.g. `$identify`). */
interface PluginEvent {
    event: string
    distinct_id?: string
    properties?: Record<string, any>
    timestamp?: string
    uuid?: string
    team_id?: number
    ip?: string | null
    site_url?: string
    now?: string
    sent_at?: string | null
    [key: string]: any
}

/** The reduced event `composeWebhook` receives: `timestamp` is a Date. */
interface WebhookEvent {
    uuid?: string
    event: string
    team_id?: number
    distinct_id?: string
    properties?: Record<string, any>
    timestamp?: Date | string
}

/** A file named by an `attachment` config field. */
interface PluginAttachment {
    content_type: string
    file_name: string
    contents: Buffer
}

/** `meta.cache`: Redis-like, scoped to the connector; values are JSON. */
interface CacheExtension {
    set(key: string, value: unknown, ttlSeconds?: number): Promise<void>
    get<T = unknown>(key: string, defaultValue: T): Promise<T>
    incr(key: string): Promise<number>
    expire(key: string, ttlSeconds: number): Promise<boolean>
    lpush(key: string, elementOrArray: unknown | unknown[]): Promise<number>
    lrange(key: string, startIndex: number, endIndex: number): Promise<string[]>
    llen(key: string): Promise<number>
    lrem(key: string, count: number, elementKey: string): Promise<number>
    lpop(key: string, count: number): Promise<string[] | null>
}

/**
 * `meta.storage`: persistent per connector config; values are JSON. A key never
 * set gives the default (`undefined` without one); `set(key, undefined)` deletes it.
 */
interface StorageExtension {
    get<T = unknown>(key: string, defaultValue: T): Promise<T>
    get(key: string): Promise<unknown>
    set(key: string, value: unknown): Promise<void>
    del(key: string): Promise<void>
}

/** The second argument of every special function. */
interface Meta<Config = Record<string, any>, Global = Record<string, any>> {
    /** The user's values for the fields plugin.json declares, as given (strings, usually). */
    config: Config
    /** Attachment fields, by key. */
    attachments: Record<string, PluginAttachment | undefined>
    /** One object per connector instance: fill it in setupPlugin. */
    global: Global
    cache: CacheExtension
    storage: StorageExtension
    geoip: GeoIpExtension
}

/** `meta.geoip`: MaxMind City records shaped as the Node reader returns them. */
interface GeoIpExtension {
    /** The record for `ip`, or null when the database does not know it. */
    locate(ip: string): Promise<GeoIpRecord | null>
}

/** Names by language (`en`, `de`, …). */
type GeoIpNames = Record<string, string>

interface GeoIpRecord {
    city?: { geonameId?: number; names?: GeoIpNames }
    continent?: { code?: string; geonameId?: number; names?: GeoIpNames }
    country?: { geonameId?: number; isoCode?: string; names?: GeoIpNames; isInEuropeanUnion?: boolean }
    location?: { accuracyRadius?: number; latitude?: number; longitude?: number; metroCode?: number; timeZone?: string }
    postal?: { code?: string }
    registeredCountry?: { geonameId?: number; isoCode?: string; names?: GeoIpNames }
    subdivisions?: { geonameId?: number; isoCode?: string; names?: GeoIpNames }[]
    [key: string]: unknown
}

/** What composeWebhook returns; method defaults to POST, headers to JSON. */
interface Webhook {
    url: string
    body?: string
    headers?: Record<string, string>
    method?: string
}

/** The special functions a connector may define (all optional). */
interface Plugin<M extends Meta = Meta> {
    setupPlugin?(meta: M): void | Promise<void>
    teardownPlugin?(meta: M): void | Promise<void>
    processEvent?(event: PluginEvent, meta: M): PluginEvent | null | undefined | false | Promise<PluginEvent | null | undefined | false>
    composeWebhook?(event: WebhookEvent, meta: M): Webhook | null
    onEvent?(event: WebhookEvent, meta: M): void | Promise<void>
    /** Scheduled tasks: `sandpipe serve` calls each at the start of every UTC minute, hour or day. */
    runEveryMinute?(meta: M): void | Promise<void>
    runEveryHour?(meta: M): void | Promise<void>
    runEveryDay?(meta: M): void | Promise<void>
}

/** The encodings `Buffer` reads and writes. */
type BufferEncoding = 'utf8' | 'utf-8' | 'base64' | 'base64url' | 'hex' | 'latin1' | 'binary' | 'ascii' | 'utf16le'

/** Node's Buffer, the subset sandpipe provides. */
interface Buffer extends Uint8Array {
    toString(encoding?: BufferEncoding, start?: number, end?: number): string
    toJSON(): { type: 'Buffer'; data: number[] }
    equals(other: Uint8Array): boolean
}

interface BufferConstructor {
    readonly prototype: Buffer
    from(value: string, encoding?: BufferEncoding): Buffer
    from(value: ArrayBuffer | ArrayLike<number> | Uint8Array): Buffer
    alloc(size: number, fill?: number | string): Buffer
    isBuffer(value: unknown): value is Buffer
    byteLength(value: string | Uint8Array, encoding?: BufferEncoding): number
    concat(list: Uint8Array[], totalLength?: number): Buffer
    compare(a: Uint8Array, b: Uint8Array): number
}
declare var Buffer: BufferConstructor

/** A hash in progress (`crypto.createHash`). */
interface SandpipeHash {
    update(data: string | Uint8Array, encoding?: string): SandpipeHash
    digest(): Buffer
    digest(encoding: 'hex' | 'base64' | 'base64url' | 'latin1'): string
}

/** Node's crypto, the subset sandpipe provides (merges with the DOM's `Crypto`). */
interface Crypto {
    createHash(algorithm: 'md5' | 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512'): SandpipeHash
    createHmac(
        algorithm: 'md5' | 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512',
        key: string | Uint8Array,
    ): SandpipeHash
    randomUUID(): `${string}-${string}-${string}-${string}-${string}`
}
declare var crypto: Crypto

/** `console`, as the DOM declares it; lines go to the connector's log. */
interface Console {
    debug(...data: any[]): void
    info(...data: any[]): void
    log(...data: any[]): void
    warn(...data: any[]): void
    error(...data: any[]): void
}
declare var console: Console

/** What `fetch` resolves to. */
interface SandpipeResponse {
    ok: boolean
    status: number
    statusText: string
    url: string
    headers: { get(name: string): string | null }
    text(): Promise<string>
    json(): Promise<any>
    arrayBuffer(): Promise<ArrayBuffer>
}

/** `fetch`'s options. */
interface SandpipeRequestInit {
    method?: string
    headers?: Record<string, string>
    body?: string | Uint8Array
}

/** `fetch`, to the hosts the operator allows (README, "What connectors get"). */
declare function fetch(url: string, init?: SandpipeRequestInit): Promise<SandpipeResponse>

/** PostHog's `posthog` global: events captured here are emitted after the chain. */
declare const posthog: {
    capture(event: string, properties?: Record<string, any>): void
}

/** Thrown to ask for a retry (PostHog semantics). */
declare class RetryError extends Error {}

/** A timer's handle, as Node's `Timeout`: give it to `clearTimeout`/`clearInterval`. */
interface SandpipeTimeout {
    ref(): SandpipeTimeout
    unref(): SandpipeTimeout
    hasRef(): boolean
}
/**
 * Timers run inside the call that sets them, on a virtual clock that starts at 0 with
 * every call: a delay orders timers but is not waited for; a timer due after the call's
 * deadline fails the call; timers still pending when the call ends are cancelled.
 */
declare function setTimeout<A extends any[]>(callback: (...args: A) => void, ms?: number, ...args: A): SandpipeTimeout
declare function setInterval<A extends any[]>(callback: (...args: A) => void, ms?: number, ...args: A): SandpipeTimeout
declare function clearTimeout(timer?: SandpipeTimeout | number | null): void
declare function clearInterval(timer?: SandpipeTimeout | number | null): void
declare function queueMicrotask(callback: () => void): void
