//! The stable diagnostic codes, each with a one-line summary.
//!
//! Codes are part of the user-facing contract (scripts match on them): never rename one.

/// Every code a diagnostic can carry, with what it means.
pub const ALL: &[(&str, &str)] = &[
    ("syntax", "the file is not valid TOML"),
    ("unknown-key", "a key that this section does not have"),
    ("missing-key", "a required key is absent"),
    ("wrong-type", "a value of the wrong type"),
    (
        "unknown-value",
        "a value that is not one of the allowed words",
    ),
    ("out-of-range", "a number outside its allowed range"),
    (
        "unsupported-version",
        "a config format version this program does not know",
    ),
    (
        "invalid-name",
        "a name with characters other than letters, digits, '-', '_', '.'",
    ),
    ("duplicate-name", "two spaces, or two seeds, with one name"),
    ("invalid-key", "a public key that is not 64 hex characters"),
    ("duplicate-key", "the same public key listed twice"),
    (
        "removed-seeder",
        "a key both among a space's seeders and removed from it",
    ),
    (
        "admin-threshold",
        "an admin threshold larger than the number of admin keys",
    ),
    (
        "unknown-fleet",
        "an `admins.fleet` that names no declared space",
    ),
    (
        "fleet-unlimited",
        "a cap, window or quota on the fleet, whose control traffic is never held back",
    ),
    (
        "admins-without-fleet",
        "admin keys without `admins.fleet`: the admins cannot reach the device",
    ),
    (
        "invalid-address",
        "a space address that is not 64 hex characters",
    ),
    ("duplicate-address", "the same address declared twice"),
    (
        "seed-is-space",
        "a seed whose address is also a declared space",
    ),
    (
        "invalid-invite",
        "an invite code with a wrong prefix or checksum",
    ),
    (
        "invalid-size",
        "a size that is not a number with a unit like \"50 GiB\"",
    ),
    (
        "invalid-rate",
        "a rate that is not a size per second like \"2 MiB/s\"",
    ),
    (
        "invalid-duration",
        "a duration that is not like \"8h\" or \"90m\"",
    ),
    ("invalid-cron", "a cron expression that does not parse"),
    ("invalid-zone", "a time zone that is not an IANA zone name"),
    ("zero-window", "a window or limit that lasts no time"),
    (
        "window-never-fires",
        "a cron expression with no future firing",
    ),
    (
        "window-always-open",
        "a window or limit lasting at least as long as the gap between its starts: always on",
    ),
    (
        "allow-windows-denied",
        "deny windows cover every allow window: the space never replicates",
    ),
    (
        "empty-limit",
        "a scheduled limit that caps neither upload nor download",
    ),
    (
        "relative-path",
        "a path that is neither absolute nor starts with '~/'",
    ),
    ("nested-mount", "a mount inside another mount"),
    (
        "unsafe-place",
        "a mount, data directory or socket on or in a system directory, or on the home directory",
    ),
    ("invalid-path", "a path containing a NUL byte"),
    (
        "socket-over-file",
        "a control socket path where a file that is not a socket exists",
    ),
    ("zero-quota", "a storage quota of zero bytes"),
    ("too-long", "a text longer than its limit"),
    (
        "mount-in-data-dir",
        "a mount inside the data directory, or the data directory inside a mount",
    ),
    ("invalid-socket-address", "an address that is not ip:port"),
    (
        "invalid-peer",
        "a peer that is not host:port or KEY@host:port",
    ),
    ("invalid-url", "a relay that is not an http(s) URL"),
    (
        "socket-path-too-long",
        "a unix socket path longer than the system allows",
    ),
    (
        "quota-exceeds-disk",
        "a quota larger than the disk holding the data directory",
    ),
    (
        "seed-quota-exceeds-total",
        "a seed quota larger than the total storage quota",
    ),
    (
        "web-without-login",
        "a web dashboard reachable beyond loopback without a password hash or token file",
    ),
    (
        "invalid-password-hash",
        "a web_password_hash that is not an argon2 PHC string",
    ),
];

/// The code the agent shows (as `ConfigInvalid`) for a config file it cannot read at all:
/// missing, not a regular file, too large, not UTF-8. Validation never reports it.
/// Codes of rendering a fleet's layers for one device (`coboxctl fleet render`), shown by
/// the fleet cases in `client/tests/fleets/`.
pub const FLEET: &[(&str, &str)] = &[
    (
        "fleet-conflict",
        "two groups matching one device set a value differently",
    ),
    (
        "unknown-placeholder",
        "a placeholder other than {{device.name}} and {{labels.NAME}}, or a label the device lacks",
    ),
    (
        "fleet-invalid",
        "a fleet.toml entry that is wrong or repeated",
    ),
    ("unknown-device", "a device name the fleet does not list"),
];

pub const UNREADABLE: (&str, &str) = (
    "unreadable",
    "a config that cannot be read: missing, not a regular file, too large, not UTF-8",
);

/// The summary of a code, if it exists.
pub fn summary(code: &str) -> Option<&'static str> {
    ALL.iter()
        .chain([&UNREADABLE])
        .find(|(c, _)| *c == code)
        .map(|(_, s)| *s)
}
