// Fetches loopback, link-local, metadata and private addresses; each target's
// outcome is logged on its own (`refused <url>: <error>`), so each is asserted.
const targets = {
    // Refused by the host's address checks as they stand.
    direct: [
        'http://127.0.0.1:9/',
        'http://localhost:9/',
        'http://[::1]:9/',
        'http://0.0.0.0:9/',
        'http://169.254.169.254/latest/meta-data/iam/security-credentials/',
        'http://169.254.10.10/',
        'http://100.100.100.200/latest/meta-data/',
        'http://10.0.0.8/',
        'http://192.168.1.1/admin',
        'http://[fd00:ec2::254]/',
        'http://[::ffff:127.0.0.1]:9/',
        'http://[::ffff:169.254.169.254]/',
    ],
    // IPv4 addresses inside IPv6 ones that are not IPv4-mapped: NAT64, 6to4
    // and IPv4-compatible.
    translated: [
        'http://[64:ff9b::a9fe:a9fe]/',
        'http://[2002:7f00:1::]:9/',
        'http://[::127.0.0.1]:9/',
    ],
}

export async function processEvent(event, { config }) {
    if (event.event === 'attack') {
        for (const url of targets[config.targets]) {
            try {
                await fetch(url)
                console.log(`reached ${url}`)
                event.properties.reached = (event.properties.reached || []).concat(url)
            } catch (error) {
                // Refused: the host logs it for this connector too.
                console.log(`refused ${url}: ${error}`)
            }
        }
    }
    return event
}
