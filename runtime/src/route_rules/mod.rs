//! Route rules (`[route_rules."/pattern/**"]`, Nitro's `routeRules`): headers, redirects, CORS
//! and caching by path pattern, without code.
//!
//! `rules.rs` is the data, `pattern.rs` the patterns, `matching.rs` how the rules of every
//! pattern that matches a path merge (most specific wins, key by key), `cache.rs` the cache's keys and
//! entries: all pure. `apply.rs` runs them around the server's dispatch of one request.

mod apply;
mod cache;
mod cached;
mod matching;
mod pattern;
mod rules;
mod state;

pub(crate) use apply::handle;
pub(crate) use cached::{CacheStep, Next, Redispatch, cached};
pub use matching::{Resolved, RouteRules};
pub use pattern::PatternError;
pub use rules::{CacheRule, Cors, Redirect, Rule};
pub use state::RouteRulesState;
