//! `[runtime_config]`: the app's own settings, read by routes with `nitro::config()`
//! (`docs/config.md`).
//!
//! ```toml
//! [runtime_config]
//! api_base_url = "https://api.example.com"
//! [runtime_config.database]
//! pool_size = 8
//! ```
//!
//! Any TOML values. Each leaf can be overridden by an environment variable named `NITRO_` plus
//! its key path in upper snake case (`database.pool_size` → `NITRO_DATABASE_POOL_SIZE`; a
//! `camelCase` key gets an `_` at each hump, a `-` becomes `_`), only for keys that exist, as in
//! Nitro. Unlike Nitro, which takes the raw string, the value is parsed as the type of the
//! default, and a value that does not parse is an error naming the variable and the type.
//! `nitro build` records the defaults (without overrides) in `nitro.json`; `nitro start` applies
//! the environment of the machine it runs on. Pure: the environment is passed in.

use serde_json::Value;

/// The prefix of override variables.
pub const ENV_PREFIX: &str = "NITRO_";

/// An environment override that does not parse as its default's type.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "environment variable `{variable}` is `{value}`, but `{key}` in `[runtime_config]` is {expected}"
)]
pub struct RuntimeConfigError {
    pub variable: String,
    pub value: String,
    /// The key path, `database.pool_size`.
    pub key: String,
    /// `an integer`, `a boolean (true or false)`, …
    pub expected: &'static str,
}

impl RuntimeConfigError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        Some(format!(
            "set `{}` to {}, or unset it to keep the value of `[runtime_config]`",
            self.variable, self.expected
        ))
    }
}

/// `[runtime_config]` of `nitro.toml` as JSON (dates and times become their TOML text).
pub fn to_json(table: &toml::Table) -> Value {
    fn convert(value: &toml::Value) -> Value {
        match value {
            toml::Value::String(s) => Value::String(s.clone()),
            toml::Value::Integer(i) => Value::from(*i),
            toml::Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or_else(|| Value::String(f.to_string())),
            toml::Value::Boolean(b) => Value::Bool(*b),
            toml::Value::Datetime(d) => Value::String(d.to_string()),
            toml::Value::Array(items) => Value::Array(items.iter().map(convert).collect()),
            toml::Value::Table(t) => {
                Value::Object(t.iter().map(|(k, v)| (k.clone(), convert(v))).collect())
            }
        }
    }
    Value::Object(table.iter().map(|(k, v)| (k.clone(), convert(v))).collect())
}

/// The variable that overrides the key at `path`: `["database", "poolSize"]` →
/// `NITRO_DATABASE_POOL_SIZE`.
pub fn env_name(path: &[&str]) -> String {
    let mut out = String::from(ENV_PREFIX);
    for (i, key) in path.iter().enumerate() {
        if i > 0 {
            out.push('_');
        }
        let mut previous_lower = false;
        for c in key.chars() {
            if c.is_ascii_uppercase() && previous_lower {
                out.push('_');
            }
            previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
            out.push(match c {
                '-' | '.' | ' ' => '_',
                c => c.to_ascii_uppercase(),
            });
        }
    }
    out
}

/// `defaults` with every override found by `var` applied. Tables are walked, every other
/// value (arrays included, given as JSON) is a leaf.
pub fn apply_env(
    defaults: &Value,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<Value, RuntimeConfigError> {
    let mut out = defaults.clone();
    walk(&mut out, &mut Vec::new(), var)?;
    Ok(out)
}

fn walk(
    value: &mut Value,
    path: &mut Vec<String>,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<(), RuntimeConfigError> {
    if let Value::Object(map) = value {
        for (key, child) in map.iter_mut() {
            path.push(key.clone());
            walk(child, path, var)?;
            path.pop();
        }
        return Ok(());
    }
    if path.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = path.iter().map(String::as_str).collect();
    let variable = env_name(&keys);
    let Some(raw) = var(&variable) else {
        return Ok(());
    };
    let error = |expected: &'static str| RuntimeConfigError {
        variable: variable.clone(),
        value: raw.clone(),
        key: path.join("."),
        expected,
    };
    let trimmed = raw.trim();
    // Empty counts as unset (shells leave `X=` behind), except for a string, where it is a value.
    if trimmed.is_empty() && !value.is_string() {
        return Ok(());
    }
    *value = match value {
        Value::String(_) => Value::String(raw.clone()),
        Value::Bool(_) => match trimmed {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(error("a boolean (`true` or `false`)")),
        },
        Value::Number(n) if n.is_i64() || n.is_u64() => trimmed
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| error("an integer"))?,
        Value::Number(_) => trimmed
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| error("a number"))?,
        Value::Array(_) => match serde_json::from_str::<Value>(trimmed) {
            Ok(v @ Value::Array(_)) => v,
            _ => return Err(error("an array, written as JSON (`[\"a\", \"b\"]`)")),
        },
        Value::Null | Value::Object(_) => return Ok(()),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defaults() -> Value {
        let table: toml::Table = toml::from_str(
            r#"
            api_base_url = "https://api.example.com"
            page_size = 20
            ratio = 0.5
            beta = false
            hosts = ["a", "b"]
            since = 2024-01-01
            [database]
            poolSize = 8
            "#,
        )
        .unwrap();
        to_json(&table)
    }

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn without_overrides_the_defaults_stay() {
        let value = apply_env(&defaults(), &env(&[])).unwrap();
        assert_eq!(
            value,
            json!({
                "api_base_url": "https://api.example.com", "page_size": 20, "ratio": 0.5,
                "beta": false, "hosts": ["a", "b"], "since": "2024-01-01",
                "database": { "poolSize": 8 }
            })
        );
    }

    #[test]
    fn env_names_are_the_key_path_in_upper_snake_case() {
        assert_eq!(env_name(&["api_base_url"]), "NITRO_API_BASE_URL");
        assert_eq!(
            env_name(&["database", "poolSize"]),
            "NITRO_DATABASE_POOL_SIZE"
        );
        assert_eq!(env_name(&["feature-flags", "x"]), "NITRO_FEATURE_FLAGS_X");
    }

    #[test]
    fn each_type_is_parsed_as_its_default() {
        let value = apply_env(
            &defaults(),
            &env(&[
                ("NITRO_API_BASE_URL", "http://localhost:9000"),
                ("NITRO_PAGE_SIZE", " 50 "),
                ("NITRO_RATIO", "0.25"),
                ("NITRO_BETA", "true"),
                ("NITRO_HOSTS", r#"["c"]"#),
                ("NITRO_SINCE", "2025-02-03"),
                ("NITRO_DATABASE_POOL_SIZE", "16"),
                ("NITRO_UNKNOWN", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(value["api_base_url"], json!("http://localhost:9000"));
        assert_eq!(value["page_size"], json!(50));
        assert_eq!(value["ratio"], json!(0.25));
        assert_eq!(value["beta"], json!(true));
        assert_eq!(value["hosts"], json!(["c"]));
        assert_eq!(value["since"], json!("2025-02-03"));
        assert_eq!(value["database"]["poolSize"], json!(16));
        assert!(value.get("unknown").is_none());
    }

    #[test]
    fn an_empty_value_sets_a_string_and_leaves_other_types_alone() {
        let value = apply_env(
            &defaults(),
            &env(&[("NITRO_API_BASE_URL", ""), ("NITRO_PAGE_SIZE", " ")]),
        )
        .unwrap();
        assert_eq!(value["api_base_url"], json!(""));
        assert_eq!(value["page_size"], json!(20));
    }

    #[test]
    fn a_float_default_takes_an_integer_text() {
        let value = apply_env(&defaults(), &env(&[("NITRO_RATIO", "2")])).unwrap();
        assert_eq!(value["ratio"], json!(2.0));
    }

    #[test]
    fn a_bad_override_names_the_variable_the_key_and_the_type() {
        for (variable, value, key, expected) in [
            ("NITRO_PAGE_SIZE", "many", "page_size", "an integer"),
            ("NITRO_PAGE_SIZE", "2.5", "page_size", "an integer"),
            ("NITRO_RATIO", "half", "ratio", "a number"),
            ("NITRO_BETA", "yes", "beta", "a boolean (`true` or `false`)"),
            (
                "NITRO_HOSTS",
                "a,b",
                "hosts",
                "an array, written as JSON (`[\"a\", \"b\"]`)",
            ),
            (
                "NITRO_DATABASE_POOL_SIZE",
                "x",
                "database.poolSize",
                "an integer",
            ),
        ] {
            let error = apply_env(&defaults(), &env(&[(variable, value)])).unwrap_err();
            assert_eq!(
                error,
                RuntimeConfigError {
                    variable: variable.into(),
                    value: value.into(),
                    key: key.into(),
                    expected,
                }
            );
            assert!(error.to_string().contains(&format!("`{variable}`")));
        }
    }
}
