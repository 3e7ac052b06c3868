//! Route rules (`[route_rules."/pattern/**"]`, Nitro's `routeRules`): headers, redirects, CORS
//! and caching by path pattern, without code.
//!
//! `rules.rs` is the data, `matching.rs` the patterns and how the rules of every pattern that
//! matches a path merge (most specific wins, key by key), `cache.rs` the cache's keys and
//! entries: all pure. `apply.rs` runs them around the server's dispatch of one request.

mod apply;
mod cache;
mod matching;
mod rules;
mod state;

pub(crate) use apply::handle;
pub use matching::{PatternError, Resolved};
pub use rules::{CacheRule, Cors, Redirect, RouteRules, Rule};
pub use state::RouteRulesState;
