//! Path patterns and the merge of the rules that match a path. Pure.
//!
//! A pattern is a path whose segments are literal (`users`), one segment of anything (`*` or
//! `:name`), or, last only, any number of segments (`**`, zero included: `/blog/**` matches
//! `/blog` too). Several patterns may match a path; their rules merge from the least to the
//! most specific, key by key: a more specific pattern's `redirect`, `cors` and `cache` replace
//! the broader ones, and its `headers` are added over theirs, name by name.
//!
//! Specificity compares segment by segment from the left: a literal beats `*`/`:name`, which
//! beats the end of the pattern; when one pattern's segments are a prefix of the other's, the
//! longer is more specific; a pattern without `**` beats the same one with it. So for
//! `/api/users/7`: `/**` < `/api/**` < `/api/:id/**`... < `/api/users/**` < `/api/users/:id` <
//! `/api/users/7`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::pattern::{Pattern, PatternError};
use super::rules::{CacheRule, Cors, Redirect, Rule};

/// Every rule of an app, by pattern (see `docs/config.md`), patterns checked and parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<(String, Rule)>", into = "Vec<(String, Rule)>")]
pub struct RouteRules {
    pub(crate) rules: Vec<(Pattern, Rule)>,
}

impl TryFrom<Vec<(String, Rule)>> for RouteRules {
    type Error = PatternError;

    fn try_from(rules: Vec<(String, Rule)>) -> Result<RouteRules, Self::Error> {
        RouteRules::new(rules)
    }
}

impl From<RouteRules> for Vec<(String, Rule)> {
    fn from(rules: RouteRules) -> Vec<(String, Rule)> {
        rules
            .rules
            .into_iter()
            .map(|(pattern, rule)| (pattern.text().to_owned(), rule))
            .collect()
    }
}

/// The merged rules for one path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// By lower-case name.
    pub headers: BTreeMap<String, String>,
    /// Where to, resolved for the path, and the status.
    pub redirect: Option<(String, u16)>,
    pub cors: Option<Cors>,
    pub cache: Option<CacheRule>,
}

impl Resolved {
    pub fn is_empty(&self) -> bool {
        *self == Resolved::default()
    }
}

impl RouteRules {
    /// Checks and parses the patterns.
    pub fn new(rules: Vec<(String, Rule)>) -> Result<RouteRules, PatternError> {
        let rules = rules
            .into_iter()
            .map(|(pattern, rule)| Ok((Pattern::parse(&pattern)?, rule)))
            .collect::<Result<Vec<_>, PatternError>>()?;
        Ok(RouteRules { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules for `path` (the URL path, without the query), merged.
    pub fn resolve(&self, path: &str) -> Resolved {
        let mut out = Resolved::default();
        if self.rules.is_empty() {
            return out;
        }
        let parts: Vec<&str> = path
            .trim_start_matches('/')
            .split('/')
            .filter(|p| !p.is_empty())
            .collect();
        let mut matched: Vec<(&Pattern, &Rule, Vec<&str>)> = self
            .rules
            .iter()
            .filter_map(|(pattern, rule)| Some((pattern, rule, pattern.matches(&parts)?)))
            .collect();
        // Least specific first; a stable sort keeps the file's order for equal patterns.
        matched.sort_by(|a, b| a.0.specificity(b.0));
        for (pattern, rule, rest) in matched {
            for (name, value) in &rule.headers {
                out.headers.insert(name.to_ascii_lowercase(), value.clone());
            }
            if let Some(Redirect { to, status }) = &rule.redirect {
                let to = match to.strip_suffix("/**") {
                    Some(base) if pattern.rest => {
                        let mut to = base.to_owned();
                        for part in &rest {
                            to.push('/');
                            to.push_str(part);
                        }
                        if to.is_empty() {
                            to.push('/');
                        }
                        to
                    }
                    _ => to.clone(),
                };
                out.redirect = Some((to, *status));
            }
            if let Some(cors) = &rule.cors {
                out.cors = cors.clone();
            }
            if let Some(cache) = &rule.cache {
                out.cache = cache.clone();
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(list: &[(&str, Rule)]) -> RouteRules {
        RouteRules::new(
            list.iter()
                .map(|(p, r)| ((*p).to_owned(), r.clone()))
                .collect(),
        )
        .unwrap()
    }

    fn header(name: &str, value: &str) -> Rule {
        Rule {
            headers: BTreeMap::from([(name.to_owned(), value.to_owned())]),
            ..Rule::default()
        }
    }

    fn headers_for(rules: &RouteRules, path: &str) -> Vec<(String, String)> {
        rules.resolve(path).headers.into_iter().collect()
    }

    #[test]
    fn patterns_are_checked() {
        for (bad, reason) in [
            ("api/**", "must start with `/`"),
            ("/a/**/b", "has `**` before its last segment"),
            ("/a//b", "has an empty segment (`//`)"),
            ("/a*", "has `*` inside a segment"),
        ] {
            let error = Pattern::parse(bad).unwrap_err();
            assert!(error.to_string().contains(reason), "{bad}: {error}");
            assert!(error.to_string().contains(&format!("`{bad}`")), "{error}");
        }
        for good in ["/", "/**", "/a/*", "/a/:id/b", "/a/", "/a/**"] {
            Pattern::parse(good).unwrap();
        }
    }

    #[test]
    fn what_each_pattern_matches() {
        let r = rules(&[
            ("/exact", header("x", "exact")),
            ("/one/*", header("x", "one")),
            ("/deep/**", header("x", "deep")),
            ("/users/:id/posts", header("x", "param")),
        ]);
        let x = |path| r.resolve(path).headers.get("x").cloned();
        assert_eq!(x("/exact").as_deref(), Some("exact"));
        assert_eq!(x("/exact/"), Some("exact".into()));
        assert_eq!(x("/exact/more"), None);
        assert_eq!(x("/one/a").as_deref(), Some("one"));
        assert_eq!(x("/one"), None);
        assert_eq!(x("/one/a/b"), None);
        assert_eq!(x("/deep").as_deref(), Some("deep"));
        assert_eq!(x("/deep/a/b/c").as_deref(), Some("deep"));
        assert_eq!(x("/deeper"), None);
        assert_eq!(x("/users/7/posts").as_deref(), Some("param"));
        assert_eq!(x("/users/7"), None);
    }

    #[test]
    fn the_most_specific_pattern_wins_key_by_key() {
        let r = rules(&[
            ("/api/users/7", header("x-level", "exact")),
            ("/**", header("x-level", "all")),
            ("/api/users/:id", header("x-level", "param")),
            ("/api/**", header("x-level", "api")),
            ("/api/users/**", header("x-level", "users")),
            ("/api/**", header("x-api", "yes")),
        ]);
        let level = |path| r.resolve(path).headers["x-level"].clone();
        assert_eq!(level("/"), "all");
        assert_eq!(level("/other"), "all");
        assert_eq!(level("/api/x"), "api");
        assert_eq!(level("/api/users"), "users");
        assert_eq!(level("/api/users/8/posts"), "users");
        assert_eq!(level("/api/users/8"), "param");
        assert_eq!(level("/api/users/7"), "exact");
        // Headers of broader patterns stay unless a narrower one sets the same name.
        assert_eq!(
            headers_for(&r, "/api/users/7"),
            [
                ("x-api".to_owned(), "yes".to_owned()),
                ("x-level".to_owned(), "exact".to_owned())
            ]
        );
    }

    #[test]
    fn redirects_carry_the_rest_of_the_path_and_narrower_rules_switch_things_off() {
        let cache = CacheRule {
            max_age: 60,
            swr: 0,
            storage: "memory".into(),
            vary: Vec::new(),
        };
        let r = rules(&[
            (
                "/old/**",
                Rule {
                    redirect: Some(Redirect {
                        to: "/new/**".into(),
                        status: 308,
                    }),
                    ..Rule::default()
                },
            ),
            (
                "/docs",
                Rule {
                    redirect: Some(Redirect {
                        to: "https://docs.example/".into(),
                        status: 302,
                    }),
                    ..Rule::default()
                },
            ),
            (
                "/api/**",
                Rule {
                    cors: Some(Some(Cors::default())),
                    cache: Some(Some(cache.clone())),
                    ..Rule::default()
                },
            ),
            (
                "/api/live",
                Rule {
                    cache: Some(None),
                    ..Rule::default()
                },
            ),
        ]);
        assert_eq!(
            r.resolve("/old/a/b").redirect,
            Some(("/new/a/b".into(), 308))
        );
        assert_eq!(r.resolve("/old").redirect, Some(("/new".into(), 308)));
        assert_eq!(
            r.resolve("/docs").redirect,
            Some(("https://docs.example/".into(), 302))
        );
        assert_eq!(r.resolve("/api/x").cache, Some(cache));
        let live = r.resolve("/api/live");
        assert_eq!(live.cache, None);
        assert_eq!(live.cors, Some(Cors::default()));
        assert!(r.resolve("/elsewhere").is_empty());
    }

    #[test]
    fn rules_read_back_as_nitro_json_writes_them() {
        let r = rules(&[("/a/**", header("x", "1")), ("/b", Rule::default())]);
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, r#"[["/a/**",{"headers":{"x":"1"}}],["/b",{}]]"#);
        assert_eq!(serde_json::from_str::<RouteRules>(&json).unwrap(), r);
        let off: Rule = serde_json::from_str(r#"{"cache":null}"#).unwrap();
        assert_eq!(off.cache, Some(None));
        assert!(serde_json::from_str::<RouteRules>(r#"[["nope",{}]]"#).is_err());
    }
}
