// What PostHog gave every plugin to require: crypto's HMAC, the legacy url
// API, node-fetch's shape, the scaffold's RetryError, and `global`.
const crypto = require('crypto')
const url = require('url')
const fetch = require('node-fetch')
const { RetryError: ScaffoldRetryError } = require('@posthog/plugin-scaffold')

function processEvent(event, { config }) {
    const p = event.properties
    p.hmac = crypto.createHmac('sha256', config.key).update(p.text).digest('hex')
    p.hmac_parts = crypto.createHmac('sha1', config.key).update(p.text.slice(0, 3)).update(p.text.slice(3)).digest('base64')
    p.hmac_long_key = crypto.createHmac('sha512', 'k'.repeat(200)).update(p.text, 'utf8').digest('hex')
    p.hmac_buffer_key = crypto.createHmac('md5', Buffer.from([1, 2, 3])).update(Buffer.from(p.text)).digest('hex')
    p.hmac_384 = crypto.createHmac('sha384', '').update('').digest('hex')
    p.parsed = url.parse(p.url)
    p.parsed_query = url.parse(p.url, true)
    p.formatted = url.format(url.parse(p.url))
    p.formatted_object = url.format({ protocol: 'https', hostname: 'Example.com', port: 8443, pathname: 'a b', query: { q: 'x y', n: 2 } })
    // (Not against `mailto:`, which has no path to resolve in: README lists it.)
    if (!p.url.startsWith('mailto:')) {
        p.resolved = [url.resolve(p.url, '../up?x=1'), url.resolve(p.url, '/abs'), url.resolve(p.url, 'https://other.example/z')]
    }
    p.resolved_relative = [url.resolve('/a/b', '//host/x'), url.resolve('x/y', '/z'), url.resolve('a/b', 'c'), url.resolve('//cdn.example/lib.js', 'other.js')]
    p.fetch_shape = [typeof fetch, fetch.default === fetch, new fetch.FetchError('m', 'system').name, typeof fetch.Headers]
    p.scaffold_retry_is_global = ScaffoldRetryError === RetryError
    p.global = typeof global
    return event
}

module.exports = { processEvent }
