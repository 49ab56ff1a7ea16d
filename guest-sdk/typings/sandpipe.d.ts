// Types for sandpipe connectors: what `processEvent`, `composeWebhook` and the
// other special functions receive, and the globals the connector world offers.
// `sandpipe new` copies this file next to a new connector's index.ts.

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

/** `meta.storage`: persistent per connector config; values are JSON. */
interface StorageExtension {
    get<T = unknown>(key: string, defaultValue: T): Promise<T>
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
}

/** Node's Buffer, the subset sandpipe provides. */
declare class Buffer extends Uint8Array {
    static from(value: string, encoding?: 'utf8' | 'utf-8' | 'base64' | 'base64url' | 'hex' | 'latin1' | 'binary' | 'ascii' | 'utf16le'): Buffer
    static from(value: ArrayBuffer | ArrayLike<number> | Uint8Array): Buffer
    static alloc(size: number, fill?: number | string): Buffer
    static isBuffer(value: unknown): value is Buffer
    static byteLength(value: string | Uint8Array, encoding?: string): number
    static concat(list: Uint8Array[], totalLength?: number): Buffer
    static compare(a: Uint8Array, b: Uint8Array): number
    toString(encoding?: string, start?: number, end?: number): string
    toJSON(): { type: 'Buffer'; data: number[] }
    equals(other: Uint8Array): boolean
}

/** Node's crypto, the subset sandpipe provides. */
declare const crypto: {
    createHash(algorithm: 'md5' | 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512'): {
        update(data: string | Uint8Array, encoding?: string): any
        digest(): Buffer
        digest(encoding: 'hex' | 'base64' | 'base64url' | 'latin1'): string
    }
    randomUUID(): string
}

/** Thrown to ask for a retry (PostHog semantics). */
declare class RetryError extends Error {}
