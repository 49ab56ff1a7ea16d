export async function processEvent(event) {
    if (event.event === 'attack') {
        const targets = [
            `http://127.0.0.1:9/`,
            `http://localhost:9/`,
            `http://[::1]:9/`,
            'http://169.254.169.254/latest/meta-data/iam/security-credentials/',
            'http://169.254.10.10/',
            'http://10.0.0.8/',
            'http://192.168.1.1/admin',
            'http://[fd00:ec2::254]/',
        ]
        for (const url of targets) {
            try {
                await fetch(url)
                event.properties.reached = (event.properties.reached || []).concat(url)
            } catch (error) {
                // Refused: the host logs it for this connector.
            }
        }
    }
    return event
}
