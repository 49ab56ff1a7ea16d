// Adds geographical properties from the event's IP address, as PostHog's
// GeoIP enricher does: `$geoip_*` on the event, the same on the person with
// `$set`, and `$initial_geoip_*` with `$set_once`.

function englishName(record) {
    return record && record.names ? record.names.en : undefined
}

// The `$geoip_*` properties (without the prefix) of a MaxMind City record.
function locationOf(response) {
    const location = {
        city_name: englishName(response.city),
        country_name: englishName(response.country),
        country_code: response.country && response.country.isoCode,
        continent_name: englishName(response.continent),
        continent_code: response.continent && response.continent.code,
        postal_code: response.postal && response.postal.code,
        latitude: response.location && response.location.latitude,
        longitude: response.location && response.location.longitude,
        accuracy_radius: response.location && response.location.accuracyRadius,
        time_zone: response.location && response.location.timeZone,
    }
    ;(response.subdivisions || []).forEach((subdivision, index) => {
        location[`subdivision_${index + 1}_code`] = subdivision.isoCode
        location[`subdivision_${index + 1}_name`] = englishName(subdivision)
    })
    for (const key of Object.keys(location)) {
        if (location[key] === undefined || location[key] === null) delete location[key]
    }
    return location
}

export async function processEvent(event, { geoip }) {
    const properties = event.properties || {}
    if (properties.$geoip_disable) {
        return event
    }
    const ip = event.ip || properties.$ip
    if (!ip) {
        return event
    }
    const response = await geoip.locate(ip)
    if (!response) {
        return event
    }
    const location = locationOf(response)
    const set = {}
    const setOnce = {}
    for (const [key, value] of Object.entries(location)) {
        properties[`$geoip_${key}`] = value
        set[`$geoip_${key}`] = value
        setOnce[`$initial_geoip_${key}`] = value
    }
    properties.$set = { ...set, ...(properties.$set || {}) }
    properties.$set_once = { ...setOnce, ...(properties.$set_once || {}) }
    event.properties = properties
    return event
}
