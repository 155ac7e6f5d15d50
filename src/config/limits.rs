//! Settings of the abuse limits: rate limits (and the trusted proxies that decide which client
//! address they key on) and the GraphQL document limits. Kept apart from the other groups so
//! that each can grow without the other.

use std::num::NonZeroU32;
use std::time::Duration;

use clap::Args;
use ipnet::IpNet;

/// Rate limits and the proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Args)]
pub struct RateLimitConfig {
    /// TRUSTED_PROXIES: comma-separated IPs or CIDRs of reverse proxies whose X-Forwarded-For
    /// names the client; empty = the TCP peer is the client.
    #[arg(id = "trusted-proxies", long = "trusted-proxies", env = "TRUSTED_PROXIES", value_name = "TRUSTED_PROXIES", default_value = "", value_parser = parse_trusted_proxies)]
    pub trusted_proxies: TrustedProxies,
    /// RATE_LIMIT_LOGIN_PER_USERNAME: failed password checks per username from one client
    /// address, e.g. `10/min`, or `off`.
    #[arg(id = "rate-limit-login-per-username", long = "rate-limit-login-per-username", env = "RATE_LIMIT_LOGIN_PER_USERNAME", value_name = "RATE_LIMIT_LOGIN_PER_USERNAME", default_value = "10/min", value_parser = parse_rate_limit)]
    pub login_per_username: RateLimit,
    /// RATE_LIMIT_LOGIN_FAILURES_PER_USERNAME: failed password checks per username from any
    /// address, e.g. `100/hour`, or `off`; past it, only addresses without recent failures
    /// for that username may try.
    #[arg(id = "rate-limit-login-failures-per-username", long = "rate-limit-login-failures-per-username", env = "RATE_LIMIT_LOGIN_FAILURES_PER_USERNAME", value_name = "RATE_LIMIT_LOGIN_FAILURES_PER_USERNAME", default_value = "100/hour", value_parser = parse_rate_limit)]
    pub login_failures_per_username: RateLimit,
    /// RATE_LIMIT_MFA_FAILURES_PER_USER: wrong second-factor codes per user from any address,
    /// e.g. `10/15min`, or `off`. No address is exempt: whoever sends codes knows the password.
    #[arg(id = "rate-limit-mfa-failures-per-user", long = "rate-limit-mfa-failures-per-user", env = "RATE_LIMIT_MFA_FAILURES_PER_USER", value_name = "RATE_LIMIT_MFA_FAILURES_PER_USER", default_value = "10/15min", value_parser = parse_rate_limit)]
    pub mfa_failures_per_user: RateLimit,
    /// RATE_LIMIT_EMAIL_CHANGE_PER_USER: email-change attempts per user, e.g. `5/hour`, or `off`.
    #[arg(id = "rate-limit-email-change-per-user", long = "rate-limit-email-change-per-user", env = "RATE_LIMIT_EMAIL_CHANGE_PER_USER", value_name = "RATE_LIMIT_EMAIL_CHANGE_PER_USER", default_value = "5/hour", value_parser = parse_rate_limit)]
    pub email_change_per_user: RateLimit,
    /// RATE_LIMIT_PASSWORD_RESET_PER_IP: password-reset requests per client address, e.g.
    /// `10/hour`, or `off`.
    #[arg(id = "rate-limit-password-reset-per-ip", long = "rate-limit-password-reset-per-ip", env = "RATE_LIMIT_PASSWORD_RESET_PER_IP", value_name = "RATE_LIMIT_PASSWORD_RESET_PER_IP", default_value = "10/hour", value_parser = parse_rate_limit)]
    pub password_reset_per_ip: RateLimit,
    /// RATE_LIMIT_PASSWORD_RESET_PER_EMAIL: password-reset requests per address asked for
    /// (registered or not), e.g. `3/hour`, or `off`.
    #[arg(id = "rate-limit-password-reset-per-email", long = "rate-limit-password-reset-per-email", env = "RATE_LIMIT_PASSWORD_RESET_PER_EMAIL", value_name = "RATE_LIMIT_PASSWORD_RESET_PER_EMAIL", default_value = "3/hour", value_parser = parse_rate_limit)]
    pub password_reset_per_email: RateLimit,
    /// RATE_LIMIT_VERIFICATION_PER_USER: verification mails a user may ask for, e.g.
    /// `3/hour`, or `off`.
    #[arg(id = "rate-limit-verification-per-user", long = "rate-limit-verification-per-user", env = "RATE_LIMIT_VERIFICATION_PER_USER", value_name = "RATE_LIMIT_VERIFICATION_PER_USER", default_value = "3/hour", value_parser = parse_rate_limit)]
    pub verification_per_user: RateLimit,
    /// RATE_LIMIT_PERSISTED_QUERIES_PER_IP: documents a client address may have kept as
    /// persisted queries, e.g. `100/hour`, or `off`. Past it a document still runs, unkept.
    #[arg(id = "rate-limit-persisted-queries-per-ip", long = "rate-limit-persisted-queries-per-ip", env = "RATE_LIMIT_PERSISTED_QUERIES_PER_IP", value_name = "RATE_LIMIT_PERSISTED_QUERIES_PER_IP", default_value = "100/hour", value_parser = parse_rate_limit)]
    pub persisted_queries_per_ip: RateLimit,
    /// RATE_LIMIT_LOGIN_PER_IP: password checks (sign-ins, password changes) per client
    /// address, e.g. `30/min`, or `off`.
    #[arg(id = "rate-limit-login-per-ip", long = "rate-limit-login-per-ip", env = "RATE_LIMIT_LOGIN_PER_IP", value_name = "RATE_LIMIT_LOGIN_PER_IP", default_value = "30/min", value_parser = parse_rate_limit)]
    pub login_per_ip: RateLimit,
    /// RATE_LIMIT_REGISTER_PER_IP: registrations per client address, e.g. `10/hour`, or `off`.
    #[arg(id = "rate-limit-register-per-ip", long = "rate-limit-register-per-ip", env = "RATE_LIMIT_REGISTER_PER_IP", value_name = "RATE_LIMIT_REGISTER_PER_IP", default_value = "10/hour", value_parser = parse_rate_limit)]
    pub register_per_ip: RateLimit,
    /// RATE_LIMIT_REFRESH_PER_SESSION: token refreshes per session, e.g. `10/min`, or `off`.
    #[arg(id = "rate-limit-refresh-per-session", long = "rate-limit-refresh-per-session", env = "RATE_LIMIT_REFRESH_PER_SESSION", value_name = "RATE_LIMIT_REFRESH_PER_SESSION", default_value = "10/min", value_parser = parse_rate_limit)]
    pub refresh_per_session: RateLimit,
}

/// Limits on GraphQL documents and requests. Each bounds the work one HTTP request can ask
/// for; a request over one is refused before anything runs.
#[derive(Debug, Clone, Args)]
pub struct GraphqlLimitsConfig {
    /// GRAPHQL_MAX_DEPTH: deepest selection accepted (GraphiQL's introspection needs 13-14).
    #[arg(id = "graphql-max-depth", long = "graphql-max-depth", env = "GRAPHQL_MAX_DEPTH", value_name = "GRAPHQL_MAX_DEPTH", default_value_t = GraphqlLimitsConfig::DEFAULT_MAX_DEPTH, value_parser = clap::value_parser!(u16).range(2..=1000))]
    pub max_depth: u16,
    /// GRAPHQL_MAX_COMPLEXITY: most fields (each counting 1) one operation may select.
    #[arg(id = "graphql-max-complexity", long = "graphql-max-complexity", env = "GRAPHQL_MAX_COMPLEXITY", value_name = "GRAPHQL_MAX_COMPLEXITY", default_value_t = GraphqlLimitsConfig::DEFAULT_MAX_COMPLEXITY, value_parser = clap::value_parser!(u32).range(10..=1_000_000))]
    pub max_complexity: u32,
    /// GRAPHQL_MAX_ALIASES: most aliased fields in one document (operations and fragments).
    #[arg(id = "graphql-max-aliases", long = "graphql-max-aliases", env = "GRAPHQL_MAX_ALIASES", value_name = "GRAPHQL_MAX_ALIASES", default_value = "30", value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub max_aliases: u32,
    /// GRAPHQL_MAX_BATCH: most operations in one JSON batch; 1 refuses batches.
    #[arg(id = "graphql-max-batch", long = "graphql-max-batch", env = "GRAPHQL_MAX_BATCH", value_name = "GRAPHQL_MAX_BATCH", default_value = "1", value_parser = clap::value_parser!(u16).range(1..=100))]
    pub max_batch: u16,
    /// GRAPHQL_MAX_AUTH_FIELDS: most fields that check a password or a second-factor code,
    /// create an account or renew a session (`login`, `loginSecondFactor`, `register`,
    /// `refresh`, …) in one HTTP request, aliases and batch entries included.
    #[arg(id = "graphql-max-auth-fields", long = "graphql-max-auth-fields", env = "GRAPHQL_MAX_AUTH_FIELDS", value_name = "GRAPHQL_MAX_AUTH_FIELDS", default_value = "1", value_parser = clap::value_parser!(u16).range(1..=100))]
    pub max_auth_fields: u16,
    /// GRAPHQL_INTROSPECTION: `true` serves `__schema` and `__type` (GraphiQL needs them);
    /// `false` refuses them.
    #[arg(id = "graphql-introspection", long = "graphql-introspection", env = "GRAPHQL_INTROSPECTION", value_name = "GRAPHQL_INTROSPECTION", default_value = "true", action = clap::ArgAction::Set, value_parser = parse_bool)]
    pub introspection: bool,
    /// WS_MAX_CONNECTIONS: most WebSocket connections (GraphQL subscriptions) one process
    /// holds at once; more are answered 503.
    #[arg(id = "ws-max-connections", long = "ws-max-connections", env = "WS_MAX_CONNECTIONS", value_name = "WS_MAX_CONNECTIONS", default_value = "10000", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub ws_max_connections: u32,
    /// WS_MAX_CONNECTIONS_PER_ACCOUNT: most signed-in WebSocket connections one account
    /// holds in one process; the next is closed with 4429.
    #[arg(id = "ws-max-connections-per-account", long = "ws-max-connections-per-account", env = "WS_MAX_CONNECTIONS_PER_ACCOUNT", value_name = "WS_MAX_CONNECTIONS_PER_ACCOUNT", default_value = "32", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub ws_max_connections_per_account: u32,
    /// WS_KEEPALIVE: seconds between the keep-alive pings of a WebSocket connection; one
    /// that answers nothing for three of them is dropped.
    #[arg(id = "ws-keepalive", long = "ws-keepalive", env = "WS_KEEPALIVE", value_name = "WS_KEEPALIVE", default_value = "15", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub ws_keepalive: u64,
}

impl GraphqlLimitsConfig {
    /// `GRAPHQL_MAX_DEPTH` when unset: GraphiQL's introspection query needs 13-14 levels.
    pub const DEFAULT_MAX_DEPTH: u16 = 16;
    /// `GRAPHQL_MAX_COMPLEXITY` when unset.
    pub const DEFAULT_MAX_COMPLEXITY: u32 = 1000;
}

/// At most `count` attempts per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Attempts allowed per period (and at once, after a quiet period).
    pub count: NonZeroU32,
    /// The period.
    pub period: Duration,
}

/// A configured rate limit: a [`Rate`], or none (`off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit(pub Option<Rate>);

/// Longest period a rate may name: a day. Longer windows would keep keys around for longer
/// than any attack they slow down is worth.
const MAX_PERIOD: Duration = Duration::from_secs(86_400);

/// Parses `<count>/<period>`, where the period is a unit (`s`, `min`, `hour`, `day`) with an
/// optional whole multiplier (`5/30s`, `100/15min`); or `off`.
fn parse_rate_limit(s: &str) -> Result<RateLimit, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("off") {
        return Ok(RateLimit(None));
    }
    let hint = "expected <count>/<period> such as 10/min, 5/30s, 100/hour, or off";
    let (count, period) = s.split_once('/').ok_or(hint)?;
    let count: u32 = count.trim().parse().map_err(|_| hint)?;
    let count = NonZeroU32::new(count).ok_or("the count must be at least 1 (or say off)")?;
    if count.get() > 1_000_000 {
        return Err("the count must be at most 1000000".into());
    }
    let period = period.trim();
    let digits = period.len()
        - period
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .len();
    let (multiplier, unit) = period.split_at(digits);
    let multiplier: u64 = if multiplier.is_empty() {
        1
    } else {
        multiplier.parse().map_err(|_| hint)?
    };
    let unit_secs: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "s" | "sec" | "second" | "seconds" => 1,
        "m" | "min" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        _ => return Err(hint.into()),
    };
    let period = Duration::from_secs(multiplier.saturating_mul(unit_secs));
    if period.is_zero() || period > MAX_PERIOD {
        return Err("the period must be between 1 s and 1 day".into());
    }
    Ok(RateLimit(Some(Rate { count, period })))
}

/// The reverse proxies trusted to say who the client is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(pub Vec<IpNet>);

/// Parses comma-separated IP addresses (a single host) and CIDR networks. A network of every
/// address (`0.0.0.0/0`, `::/0`) is refused: with it every client would be a trusted proxy
/// and could name its own address, and so its own rate-limit key, in `X-Forwarded-For`.
fn parse_trusted_proxies(s: &str) -> Result<TrustedProxies, String> {
    s.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            let net = item
                .parse::<IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| format!("`{item}` is not an IP address or CIDR network"))?;
            if net.prefix_len() == 0 {
                return Err(format!(
                    "`{item}` is every address: each client could then choose its own address \
                     (and rate-limit key) in X-Forwarded-For; name the proxies' addresses"
                ));
            }
            Ok(net)
        })
        .collect::<Result<Vec<_>, _>>()
        .map(TrustedProxies)
}

pub(super) fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(count: u32, secs: u64) -> RateLimit {
        RateLimit(Some(Rate {
            count: NonZeroU32::new(count).unwrap(),
            period: Duration::from_secs(secs),
        }))
    }

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate_limit("10/min"), Ok(rate(10, 60)));
        assert_eq!(parse_rate_limit("5/30s"), Ok(rate(5, 30)));
        assert_eq!(parse_rate_limit(" 100 / 15min "), Ok(rate(100, 900)));
        assert_eq!(parse_rate_limit("10/hour"), Ok(rate(10, 3600)));
        assert_eq!(parse_rate_limit("1/day"), Ok(rate(1, 86_400)));
        assert_eq!(parse_rate_limit("OFF"), Ok(RateLimit(None)));
        for bad in [
            "",
            "10",
            "0/min",
            "x/min",
            "10/fortnight",
            "10/0s",
            "10/2day",
            "-1/s",
        ] {
            assert!(parse_rate_limit(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn proxies_parse() {
        assert_eq!(parse_trusted_proxies(""), Ok(TrustedProxies(vec![])));
        let parsed = parse_trusted_proxies("127.0.0.1, 10.0.0.0/8,::1").unwrap();
        assert_eq!(parsed.0.len(), 3);
        assert_eq!(parsed.0[0], "127.0.0.1/32".parse::<IpNet>().unwrap());
        assert_eq!(parsed.0[2], "::1/128".parse::<IpNet>().unwrap());
        assert!(parse_trusted_proxies("10.0.0.0/33").is_err());
        assert!(parse_trusted_proxies("proxy.example").is_err());
        // Every address: every client a proxy.
        assert!(parse_trusted_proxies("10.0.0.1, 0.0.0.0/0").is_err());
        assert!(parse_trusted_proxies("::/0").is_err());
    }

    #[test]
    fn bools_parse() {
        assert_eq!(parse_bool("false"), Ok(false));
        assert_eq!(parse_bool("TRUE"), Ok(true));
        assert!(parse_bool("maybe").is_err());
    }
}
