//! Validating value types: each one expands `${ENV}` and checks its value *inside*
//! `Deserialize`, so yaml_serde attaches the line and key path of the value to the error.
//!
//! Messages may quote a value as written in the file (a name, a branch, a pattern) but never
//! an expanded value, and never anything from a secret, URL or database field: those may
//! carry credentials.

use crate::env::{self, Context};
use crate::model::{
    BitbucketFlavor, MAX_EXPECTED_JOB_CHARS, MergeMode, NamePattern, NotifyEvent, NotifyFormat,
    ReportStoreApi,
};
use greg_core::Secret;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::marker::PhantomData;
use std::rc::Rc;

/// The thread's expansion context, or an error when deserialized outside
/// [`crate::Config::from_yaml_str`].
fn context<E: de::Error>() -> Result<Rc<Context>, E> {
    env::current().ok_or_else(|| {
        E::custom("internal error: config values read outside Config::from_yaml_str")
    })
}

/// Reads a scalar as its text (YAML `1.50` stays `1.50`, an empty value is ``), expands it
/// and applies `check(as written, expanded)`. All of it runs inside the visitor, so
/// yaml_serde reports a failure at the value's own line and key path.
struct TextVisitor<T> {
    check: fn(&str, String) -> Result<T, String>,
}

impl<T> Visitor<'_> for TextVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, raw: &str) -> Result<T, E> {
        let value = context::<E>()?.expand(raw).map_err(E::custom)?;
        (self.check)(raw, value).map_err(E::custom)
    }
}

/// Declares a newtype over `$inner` whose `Deserialize` reads a scalar through
/// [`TextVisitor`] with `$check` (`fn(&str as written, String expanded) -> Result<$inner,
/// String>`).
macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident($inner:ty), $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub(crate) struct $name(pub $inner);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_string(TextVisitor { check: $check }).map($name)
            }
        }
    };
}

text_type!(
    /// A string that must not be blank: user names, job names, source prefixes.
    Required(String),
    |_, value| {
        if value.trim().is_empty() {
            Err("must not be empty".to_owned())
        } else {
            Ok(value)
        }
    }
);

text_type!(
    /// A credential (`password`, `incoming_token`, `webhook_secret`): any non-empty scalar.
    /// Errors never quote it.
    SecretValue(Secret),
    |_, value| {
        if value.is_empty() {
            Err("must not be empty (when it comes from `${VAR}`, that variable is empty)"
                .to_owned())
        } else {
            Ok(Secret::new(value))
        }
    }
);

text_type!(
    /// `server.session_secret`: a credential of at least
    /// [`MIN_SESSION_SECRET_BYTES`](crate::model::MIN_SESSION_SECRET_BYTES) bytes. Errors
    /// never quote it.
    SessionSecret(Secret),
    |_, value| {
        let min = crate::model::MIN_SESSION_SECRET_BYTES;
        if value.len() < min {
            Err(format!(
                "must be at least {min} bytes long (it is {}); make one with \
                 `openssl rand -base64 48`",
                value.len()
            ))
        } else {
            Ok(Secret::new(value))
        }
    }
);

text_type!(
    /// `server.listen`: `host:port`, where host is an IP address, `[v6]` or a host name.
    Listen(String),
    |raw, value| {
        if value.parse::<std::net::SocketAddr>().is_ok() {
            return Ok(value);
        }
        let valid = value.rsplit_once(':').is_some_and(|(host, port)| {
            let host_ok = !host.is_empty()
                && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            host_ok && port.parse::<u16>().is_ok()
        });
        if valid {
            Ok(value)
        } else {
            Err(format!(
                "`{raw}` is not an address to listen on (expected host:port, like 127.0.0.1:8080 \
                 or [::]:8080)"
            ))
        }
    }
);

text_type!(
    /// An absolute `http`/`https` URL without credentials, query or fragment, stored
    /// without a trailing `/`. Errors never quote it (it may embed credentials).
    HttpUrl(String),
    |_, value| http_url(&value)
);

/// Checks an absolute `http`/`https` URL without credentials, query or fragment and returns
/// it without a trailing `/`. Messages never quote it (it may embed credentials).
pub(crate) fn http_url(value: &str) -> Result<String, String> {
    let url =
        url::Url::parse(value.trim()).map_err(|e| format!("not a valid absolute URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "must be an http or https URL, not {}:",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "must not carry credentials in the URL; use the username and password keys".to_owned(),
        );
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query (`?...`) or fragment (`#...`)".to_owned());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

text_type!(
    /// `repos[].notify[].url`: an absolute `http`/`https` URL with a host; a query is
    /// allowed (Teams' workflow URLs sign themselves there), a fragment is not. Held as
    /// (URL, host[:port]). Errors never quote it: a chat webhook's URL is its credential.
    NotifyUrl((Secret, String)),
    |_, value| {
        let url = url::Url::parse(value.trim())
            .map_err(|e| format!("not a valid absolute URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("must be an http or https URL, not {}:", url.scheme()));
        }
        let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
            return Err("the URL has no host".to_owned());
        };
        if url.fragment().is_some() {
            return Err("must not have a fragment (`#...`)".to_owned());
        }
        let host = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        Ok((Secret::new(url.as_str()), host))
    }
);

text_type!(
    /// One `repos[].notify[].events` entry.
    NotifyEventName(NotifyEvent),
    |raw, value| {
        NotifyEvent::ALL
            .into_iter()
            .find(|e| e.as_str() == value)
            .ok_or_else(|| {
                format!(
                    "`{raw}` is not a notification event (expected one of: landed, failed, \
                     left_queue, tree_closed)"
                )
            })
    }
);

text_type!(
    /// `repos[].notify[].format`.
    NotifyFormatName(NotifyFormat),
    |raw, value| match value.as_str() {
        "text" => Ok(NotifyFormat::Text),
        "json" => Ok(NotifyFormat::Json),
        _ => Err(format!(
            "`{raw}` is not a notification format (expected one of: text, json)"
        )),
    }
);

text_type!(
    /// `server.database`: a `sqlite:` or `postgres:`/`postgresql:` URL. Errors never quote
    /// it (a PostgreSQL URL may hold a password).
    Database(String),
    |_, value| {
        let scheme = value.split_once(':').map(|(scheme, _)| scheme);
        match scheme {
            Some("sqlite" | "postgres" | "postgresql") => Ok(value),
            _ => Err(
                "must be a database URL: sqlite://greg.db, sqlite:///abs/path.db or \
                 postgres://user@host/db"
                    .to_owned(),
            ),
        }
    }
);

text_type!(
    /// `server.bot_name`: non-empty, no whitespace, no `@`.
    BotName(String),
    |raw, value| {
        if value.is_empty() {
            Err("must not be empty".to_owned())
        } else if value.contains(char::is_whitespace) || value.contains('@') {
            Err(format!(
                "`{raw}` is not a bot name: one word, without spaces or `@` (commands then \
                 address it as @NAME)"
            ))
        } else {
            Ok(value)
        }
    }
);

text_type!(
    /// An organization (owner) name: non-blank, no `/` or whitespace.
    Owner(String),
    |raw, value| {
        if value.trim().is_empty() {
            Err("an organization name must not be empty".to_owned())
        } else if value.contains('/') || value.contains(char::is_whitespace) {
            Err(format!(
                "`{raw}` is not an organization name (no `/` or spaces; repository names go \
                 under `names`)"
            ))
        } else {
            Ok(value)
        }
    }
);

text_type!(
    /// A branch name in `target_branches`: non-blank, without `refs/heads/`.
    Branch(String),
    |raw, value| {
        if value.trim().is_empty() {
            Err("a branch name must not be empty".to_owned())
        } else if value.starts_with("refs/") {
            Err(format!("`{raw}`: write the branch name without `refs/heads/`"))
        } else {
            Ok(value)
        }
    }
);

text_type!(
    /// A reviewer login; a leading `@` is dropped.
    Reviewer(greg_core::Login),
    |raw, value| {
        let login = value.strip_prefix('@').unwrap_or(&value);
        if login.is_empty() || login.contains(char::is_whitespace) || login.contains('@') {
            Err(format!("`{raw}` is not a login"))
        } else {
            Ok(greg_core::Login(login.to_owned()))
        }
    }
);

text_type!(
    /// One `repos[].names` entry.
    Pattern(NamePattern),
    |_, value| NamePattern::parse(&value).map_err(|e| e.to_string())
);

text_type!(
    /// `repos[].merge_mode`.
    Mode(MergeMode),
    |raw, value| match value.as_str() {
        "builder" => Ok(MergeMode::Builder),
        "staging" => Ok(MergeMode::Staging),
        _ => Err(format!(
            "`{raw}` is not a merge mode (expected one of: builder, staging)"
        )),
    }
);

text_type!(
    /// One `repos[].report.expect` entry: a job name as `greg report --job` sends it;
    /// non-blank, at most [`MAX_EXPECTED_JOB_CHARS`] characters, no control characters.
    /// Holds (as written, expanded): messages quote only the former.
    ExpectedJob((String, String)),
    |raw, value| {
        if value.trim().is_empty() {
            Err("a job name must not be empty".to_owned())
        } else if value.chars().count() > MAX_EXPECTED_JOB_CHARS {
            Err(format!(
                "a job name must be at most {MAX_EXPECTED_JOB_CHARS} characters (this one has {})",
                value.chars().count()
            ))
        } else if value.chars().any(char::is_control) {
            Err("a job name must not contain control characters (tabs, newlines, ...)".to_owned())
        } else {
            Ok((raw.to_owned(), value))
        }
    }
);

/// `repos[].report.expect`: job names, each listed once (compared exactly, as Jenkins
/// compares job names).
#[derive(Debug, Clone, Default)]
pub(crate) struct ExpectList(pub Vec<String>);

struct ExpectListVisitor;

impl<'de> Visitor<'de> for ExpectListVisitor {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of job names")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut names: Vec<String> = Vec::new();
        while let Some(ExpectedJob((raw, name))) = seq.next_element()? {
            if names.contains(&name) {
                return Err(de::Error::custom(format!(
                    "job `{raw}` is listed more than once"
                )));
            }
            names.push(name);
        }
        Ok(names)
    }
}

impl<'de> Deserialize<'de> for ExpectList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(ExpectListVisitor).map(ExpectList)
    }
}

text_type!(
    /// `reports.store.api`.
    StoreApi(ReportStoreApi),
    |raw, value| match value.as_str() {
        "s3" => Ok(ReportStoreApi::S3),
        "gcs" => Ok(ReportStoreApi::Gcs),
        "azure" => Ok(ReportStoreApi::Azure),
        "file" => Ok(ReportStoreApi::File),
        _ => Err(format!(
            "`{raw}` is not a store api (expected one of: s3, gcs, azure, file)"
        )),
    }
);

text_type!(
    /// `reports.store.prefix`: a key prefix without a leading or trailing `/`; may be empty.
    StorePrefix(String),
    |raw, value| {
        if value.starts_with('/') || value.ends_with('/') {
            Err(format!(
                "`{raw}` must not start or end with `/` (write the prefix as `reports/greg`)"
            ))
        } else if value.chars().any(char::is_control) {
            Err("must not contain control characters".to_owned())
        } else {
            Ok(value)
        }
    }
);

text_type!(
    /// `providers.bitbucket.flavor`.
    Flavor(BitbucketFlavor),
    |raw, value| match value.as_str() {
        "cloud" => Ok(BitbucketFlavor::Cloud),
        "server" => Ok(BitbucketFlavor::Server),
        _ => Err(format!(
            "`{raw}` is not a Bitbucket flavor (expected one of: cloud, server)"
        )),
    }
);

/// Checks that `value` is among the names `known` lists in this parse's [`Context`]
/// (`section` names them in the message).
fn configured(
    raw: &str,
    value: String,
    what: &str,
    section: &str,
    known: fn(&Context) -> &[String],
) -> Result<String, String> {
    let ctx = env::current();
    let known = ctx.as_deref().map_or(&[][..], known);
    if known.contains(&value) {
        return Ok(value);
    }
    let configured = if known.is_empty() {
        "none is".to_owned()
    } else {
        format!("configured: {}", known.join(", "))
    };
    Err(format!(
        "{what} `{raw}` is not configured under `{section}` ({configured})"
    ))
}

text_type!(
    /// `repos[].provider`: a key configured under `providers`.
    ProviderRef(String),
    |raw, value| configured(raw, value, "provider", "providers", |c| &c.providers)
);

text_type!(
    /// `repos[].jobs.*.builder`: a key configured under `builders`.
    BuilderRef(String),
    |raw, value| configured(raw, value, "builder", "builders", |c| &c.builders)
);

/// A list that must hold at least one entry (`organizations`, `names`, `target_branches`).
/// An empty value (`names:`) counts as an empty list.
#[derive(Debug, Clone)]
pub(crate) struct NonEmpty<T>(pub Vec<T>);

struct NonEmptyVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for NonEmptyVisitor<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        if items.is_empty() {
            return Err(de::Error::custom("must list at least one entry"));
        }
        Ok(items)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for NonEmpty<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(NonEmptyVisitor(PhantomData))
            .map(NonEmpty)
    }
}

/// Deserializes a mapping as `K` (a derived struct), then applies `check` to the whole of
/// it, inside the mapping's visitor so a failure is reported at the mapping's line.
pub(crate) fn checked_map<'de, D, K, T>(
    d: D,
    check: fn(K) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de>,
{
    struct MapVisitor<K, T> {
        check: fn(K) -> Result<T, String>,
    }

    impl<'de, K: Deserialize<'de>, T> Visitor<'de> for MapVisitor<K, T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a mapping")
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            let keys = K::deserialize(de::value::MapAccessDeserializer::new(map))?;
            (self.check)(keys).map_err(de::Error::custom)
        }
    }

    d.deserialize_map(MapVisitor { check })
}

/// Parses a whole number from an integer scalar or a (`${VAR}`-expanded) string.
struct WholeNumber {
    /// Smallest accepted value.
    min: u64,
    /// Largest accepted value.
    max: u64,
    /// What the value counts, for messages: "approvals", "seconds".
    unit: &'static str,
}

impl WholeNumber {
    fn check<E: de::Error>(&self, n: Option<u64>) -> Result<u64, E> {
        match n {
            Some(n) if (self.min..=self.max).contains(&n) => Ok(n),
            _ if self.max == u64::MAX => Err(E::custom(format!(
                "must be a whole number ({}) of at least {}",
                self.unit, self.min
            ))),
            _ => Err(E::custom(format!(
                "must be a whole number of {} from {} to {}",
                self.unit, self.min, self.max
            ))),
        }
    }
}

impl Visitor<'_> for WholeNumber {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a whole number of {}", self.unit)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        self.check(Some(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        self.check(u64::try_from(v).ok())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<u64, E> {
        self.check(None)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        let value = context::<E>()?.expand(v).map_err(E::custom)?;
        self.check(value.trim().parse::<u64>().ok())
    }
}

/// `repos[].required_approvals`: 0 or more.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Approvals(pub u32);

impl<'de> Deserialize<'de> for Approvals {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = d.deserialize_any(WholeNumber {
            min: 0,
            max: 100,
            unit: "approvals",
        })?;
        // The visitor caps the value at 100.
        u32::try_from(n).map(Approvals).map_err(de::Error::custom)
    }
}

/// `repos[].max_test_builds`: 1 to 100 concurrent builds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BuildCap(pub u32);

impl<'de> Deserialize<'de> for BuildCap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = d.deserialize_any(WholeNumber {
            min: 1,
            max: 100,
            unit: "builds",
        })?;
        // The visitor caps the value at 100.
        u32::try_from(n).map(BuildCap).map_err(de::Error::custom)
    }
}

/// `repos[].merge_queue.{batch_size,window,window_min}`: 1 to 100.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueSize(pub u32);

impl<'de> Deserialize<'de> for QueueSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = d.deserialize_any(WholeNumber {
            min: 1,
            max: 100,
            unit: "pull requests or candidates",
        })?;
        // The visitor caps the value at 100.
        u32::try_from(n).map(QueueSize).map_err(de::Error::custom)
    }
}

/// `server.*_secs`: 1 second to 30 days.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seconds(pub u64);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(WholeNumber {
            min: 1,
            max: 30 * 24 * 3600,
            unit: "seconds",
        })
        .map(Seconds)
    }
}

/// `server.delivery_retention_days`, `server.report_retention_days`,
/// `reports.store.retention_days`: a whole number of days, 1 to 3650.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Days(pub u64);

impl<'de> Deserialize<'de> for Days {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(WholeNumber {
            min: 1,
            max: 3650,
            unit: "days",
        })
        .map(Days)
    }
}

/// `providers.github.app.id` and `installation_id`: GitHub's numeric ids, 1 or more.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GithubId(pub u64);

impl<'de> Deserialize<'de> for GithubId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(WholeNumber {
            min: 1,
            max: u64::MAX,
            unit: "a GitHub id",
        })
        .map(GithubId)
    }
}

/// `providers.github.app.private_key_path`: the content of the file it names (read before
/// the typed pass, see [`crate::load`]), one trailing newline removed. Errors name the path,
/// never the content.
#[derive(Debug, Clone)]
pub(crate) struct KeyFile(pub Secret);

impl<'de> Deserialize<'de> for KeyFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_string(KeyFileVisitor)
    }
}

struct KeyFileVisitor;

impl Visitor<'_> for KeyFileVisitor {
    type Value = KeyFile;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a file path")
    }

    fn visit_str<E: de::Error>(self, raw: &str) -> Result<KeyFile, E> {
        let ctx = context::<E>()?;
        let path = ctx.expand(raw).map_err(E::custom)?;
        if path.trim().is_empty() {
            return Err(E::custom("must not be empty"));
        }
        ctx.read_file(&path)
            .map(|content| KeyFile(Secret::new(content)))
            .map_err(E::custom)
    }
}

/// A boolean: YAML `true`/`false`, or a (`${VAR}`-expanded) string `true`/`false`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Flag(pub bool);

struct FlagVisitor;

impl Visitor<'_> for FlagVisitor {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("true or false")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        Ok(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        let value = context::<E>()?.expand(v).map_err(E::custom)?;
        match value.trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(E::custom("must be true or false")),
        }
    }
}

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FlagVisitor).map(Flag)
    }
}
