//! `[route_rules."/pattern"]`: headers, redirects, CORS and caching by path pattern, as Nitro's
//! `routeRules` (`docs/config.md`).
//!
//! ```toml
//! [route_rules."/**"]
//! headers = { "x-frame-options" = "DENY" }
//!
//! [route_rules."/old/**"]
//! redirect = { to = "/new/**", status = 308 }
//!
//! [route_rules."/api/**"]
//! cors = true
//! cache = { max_age = 60, swr = 30, vary = ["accept-language"] }
//! ```
//!
//! Pure: [`resolve`] checks each table and turns it into the runtime's [`RouteRules`], with
//! an error naming the pattern, the key, the file and the line. `nitro build` records them in
//! `nitro.json`; `nitro dev` applies an edit at once.

use std::collections::BTreeMap;

use nitro_runtime::route_rules::{CacheRule, Cors, Redirect, RouteRules, Rule};

/// A mistake in a route rule.
#[derive(Debug, thiserror::Error)]
#[error("{what} in `[route_rules.\"{pattern}\"]` of `{location}` {problem}")]
pub struct RuleConfigError {
    pub pattern: String,
    pub location: String,
    /// `` `cache.max_age` ``, or `the pattern`.
    pub what: String,
    pub problem: String,
}

impl RuleConfigError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        Some("the keys of a route rule and their values are listed in `docs/config.md`".into())
    }
}

/// Checks the tables (pattern, table, `nitro.toml:LINE`) into the runtime's rules.
pub(crate) fn resolve(
    tables: Vec<(String, toml::Value, String)>,
) -> Result<RouteRules, RuleConfigError> {
    let mut rules = Vec::new();
    for (pattern, table, location) in tables {
        if let Err(e) =
            nitro_runtime::route_rules::RouteRules::new(vec![(pattern.clone(), Rule::default())])
        {
            return Err(RuleConfigError {
                pattern,
                location,
                what: "the pattern".into(),
                problem: e.reason.to_owned(),
            });
        }
        let error = |what: &str, problem: String| RuleConfigError {
            pattern: pattern.clone(),
            location: location.clone(),
            what: what.to_owned(),
            problem,
        };
        let rule = rule(&table).map_err(|(what, problem)| error(&what, problem))?;
        rules.push((pattern.clone(), rule));
    }
    Ok(RouteRules::new(rules).expect("every pattern was checked above"))
}

/// (`` `key` ``, what is wrong).
type Problem = (String, String);

fn problem(key: &str, text: impl Into<String>) -> Problem {
    (format!("`{key}`"), text.into())
}

fn rule(table: &toml::Value) -> Result<Rule, Problem> {
    let Some(table) = table.as_table() else {
        return Err((
            "the rule".into(),
            "must be a table, such as `{ headers = { \"x-a\" = \"1\" } }`".into(),
        ));
    };
    let mut rule = Rule::default();
    for (key, value) in table {
        match key.as_str() {
            "headers" => rule.headers = headers(value)?,
            "redirect" => rule.redirect = Some(redirect(value)?),
            "cors" => rule.cors = Some(cors(value)?),
            "cache" => rule.cache = Some(cache(value)?),
            other => {
                return Err(problem(
                    other,
                    "is not a route rule: expected one of `headers`, `redirect`, `cors`, `cache`",
                ));
            }
        }
    }
    Ok(rule)
}

fn headers(value: &toml::Value) -> Result<BTreeMap<String, String>, Problem> {
    let must = "must be a table of header names and string values, such as `{ \"cache-control\" = \"no-store\" }`";
    let table = value.as_table().ok_or_else(|| problem("headers", must))?;
    let mut out = BTreeMap::new();
    for (name, value) in table {
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !valid_name {
            return Err(problem(
                "headers",
                format!("has `{name}`, which is not a header name"),
            ));
        }
        let Some(text) = value.as_str() else {
            return Err(problem(&format!("headers.{name}"), "must be a string"));
        };
        if text.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
            return Err(problem(
                &format!("headers.{name}"),
                "has a control character",
            ));
        }
        out.insert(name.to_ascii_lowercase(), text.to_owned());
    }
    Ok(out)
}

fn redirect(value: &toml::Value) -> Result<Redirect, Problem> {
    let must = "must be a path or URL, or `{ to = \"/new\", status = 301 }`";
    let (to, status) = match value {
        toml::Value::String(to) => (to.clone(), 307),
        toml::Value::Table(table) => {
            for key in table.keys() {
                if key != "to" && key != "status" {
                    return Err(problem(
                        &format!("redirect.{key}"),
                        "is not an option: expected `to` or `status`",
                    ));
                }
            }
            let to = table
                .get("to")
                .and_then(|v| v.as_str())
                .ok_or_else(|| problem("redirect.to", "must be a path or URL (a string)"))?;
            let status = match table.get("status") {
                None => 307,
                Some(status) => status
                    .as_integer()
                    .filter(|s| [301, 302, 303, 307, 308].contains(s))
                    .ok_or_else(|| {
                        problem("redirect.status", "must be 301, 302, 303, 307 or 308")
                    })? as u16,
            };
            (to.to_owned(), status)
        }
        _ => return Err(problem("redirect", must)),
    };
    if to.is_empty() || to.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(problem("redirect", "must be a path or URL without spaces"));
    }
    Ok(Redirect { to, status })
}

fn strings(value: &toml::Value, key: &str) -> Result<Vec<String>, Problem> {
    value
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| problem(key, "must be a list of strings"))
}

fn cors(value: &toml::Value) -> Result<Option<Cors>, Problem> {
    let table = match value {
        toml::Value::Boolean(true) => return Ok(Some(Cors::default())),
        toml::Value::Boolean(false) => return Ok(None),
        toml::Value::Table(table) => table,
        _ => {
            return Err(problem(
                "cors",
                "must be `true`, `false` or a table such as `{ origins = [\"https://app.example\"] }`",
            ));
        }
    };
    let mut cors = Cors::default();
    for (key, value) in table {
        let path = format!("cors.{key}");
        match key.as_str() {
            "origins" => cors.origins = strings(value, &path)?,
            "methods" => {
                cors.methods = strings(value, &path)?
                    .into_iter()
                    .map(|m| m.to_ascii_uppercase())
                    .collect()
            }
            "headers" => cors.headers = strings(value, &path)?,
            "expose_headers" => cors.expose_headers = strings(value, &path)?,
            "credentials" => {
                cors.credentials = value
                    .as_bool()
                    .ok_or_else(|| problem(&path, "must be `true` or `false`"))?
            }
            "max_age" => {
                cors.max_age = value
                    .as_integer()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| problem(&path, "must be a number of seconds"))?
                    as u64
            }
            _ => {
                return Err(problem(
                    &path,
                    "is not an option: expected `origins`, `methods`, `headers`, `expose_headers`, `credentials` or `max_age`",
                ));
            }
        }
    }
    for origin in &cors.origins {
        let ok = origin == "*"
            || ((origin.starts_with("http://") || origin.starts_with("https://"))
                && !origin
                    .trim_end_matches('/')
                    .contains(|c: char| c.is_whitespace())
                && origin.matches('/').count() == 2);
        if !ok {
            return Err(problem(
                "cors.origins",
                format!(
                    "has `{origin}`: an origin is `*` or `scheme://host[:port]`, without a path"
                ),
            ));
        }
    }
    if cors.credentials && cors.origins.iter().any(|o| o == "*") {
        return Err(problem(
            "cors.credentials",
            "needs the allowed origins listed in `cors.origins` (browsers refuse credentials with `*`)",
        ));
    }
    Ok(Some(cors))
}

fn cache(value: &toml::Value) -> Result<Option<CacheRule>, Problem> {
    let table = match value {
        toml::Value::Boolean(false) => return Ok(None),
        toml::Value::Table(table) => table,
        _ => {
            return Err(problem(
                "cache",
                "must be `false` or a table such as `{ max_age = 60 }`",
            ));
        }
    };
    let seconds = |key: &str, min: i64| -> Result<Option<u64>, Problem> {
        match table.get(key) {
            None => Ok(None),
            Some(value) => value
                .as_integer()
                .filter(|n| (min..=31_536_000).contains(n))
                .map(|n| Some(n as u64))
                .ok_or_else(|| {
                    problem(
                        &format!("cache.{key}"),
                        format!(
                            "must be a whole number of seconds from {min} to 31536000 (a year)"
                        ),
                    )
                }),
        }
    };
    for key in table.keys() {
        if !["max_age", "swr", "storage", "vary"].contains(&key.as_str()) {
            return Err(problem(
                &format!("cache.{key}"),
                "is not an option: expected `max_age`, `swr`, `storage` or `vary`",
            ));
        }
    }
    let max_age = seconds("max_age", 1)?.ok_or_else(|| {
        problem(
            "cache.max_age",
            "is required: a cache entry always expires (for example `max_age = 60`)",
        )
    })?;
    let swr = seconds("swr", 0)?.unwrap_or(0);
    let storage = match table.get("storage") {
        None => "memory".to_owned(),
        Some(value) => value
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| problem("cache.storage", "must be the name of a storage mount"))?
            .to_owned(),
    };
    let vary = match table.get("vary") {
        None => Vec::new(),
        Some(value) => strings(value, "cache.vary")?
            .into_iter()
            .map(|h| h.to_ascii_lowercase())
            .collect(),
    };
    Ok(Some(CacheRule {
        max_age,
        swr,
        storage,
        vary,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Result<RouteRules, RuleConfigError> {
        let table: toml::Table = toml::from_str(text).unwrap();
        resolve(vec![(
            "/api/**".into(),
            toml::Value::Table(table),
            "nitro.toml:2".into(),
        )])
    }

    #[test]
    fn every_key_in_its_short_and_long_form() {
        let rules = one(
            "headers = { \"X-A\" = \"1\" }\nredirect = \"/new/**\"\ncors = true\ncache = { max_age = 60, swr = 5, vary = [\"Accept-Language\"] }",
        )
        .unwrap();
        let resolved = rules.resolve("/api/x");
        assert_eq!(resolved.headers["x-a"], "1");
        assert_eq!(resolved.redirect, Some(("/new/x".into(), 307)));
        assert_eq!(resolved.cors, Some(Cors::default()));
        assert_eq!(
            resolved.cache,
            Some(CacheRule {
                max_age: 60,
                swr: 5,
                storage: "memory".into(),
                vary: vec!["accept-language".into()]
            })
        );
        let rules = one(
            "redirect = { to = \"https://example.com\", status = 301 }\ncors = { origins = [\"https://app.example\"], methods = [\"get\"], credentials = true }\ncache = false",
        )
        .unwrap();
        let resolved = rules.resolve("/api");
        assert_eq!(resolved.redirect, Some(("https://example.com".into(), 301)));
        let cors = resolved.cors.unwrap();
        assert_eq!(cors.origins, ["https://app.example"]);
        assert_eq!(cors.methods, ["GET"]);
        assert!(cors.credentials);
        assert_eq!(resolved.cache, None);
    }

    #[test]
    fn mistakes_name_the_pattern_the_key_and_the_file() {
        let error = |text| one(text).unwrap_err().to_string();
        assert_eq!(
            error("cache = { swr = 5 }"),
            "`cache.max_age` in `[route_rules.\"/api/**\"]` of `nitro.toml:2` is required: a cache entry always expires (for example `max_age = 60`)"
        );
        assert!(error("cache = { max_age = 0 }").contains("`cache.max_age`"));
        assert!(error("cache = true").contains("must be `false` or a table"));
        assert!(
            error("redirect = { to = \"/x\", status = 200 }").contains("301, 302, 303, 307 or 308")
        );
        assert!(
            error("cors = { origins = [\"*\"], credentials = true }")
                .contains("`cors.credentials`")
        );
        assert!(error("cors = { origins = [\"app.example\"] }").contains("`app.example`"));
        assert!(error("headers = { \"bad name\" = \"1\" }").contains("`bad name`"));
        assert!(error("proxy = \"/x\"").contains("`proxy` in"));
        let bad_pattern = resolve(vec![(
            "api".into(),
            toml::Value::Table(Default::default()),
            "nitro.toml:1".into(),
        )])
        .unwrap_err();
        assert!(
            bad_pattern.to_string().contains("must start with `/`"),
            "{bad_pattern}"
        );
    }
}
