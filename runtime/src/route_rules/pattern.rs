//! Path patterns of route rules: parsing, matching and how specific each is. Pure.

use std::cmp::Ordering;

/// Why a pattern is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("route rule pattern `{pattern}` {reason}")]
pub struct PatternError {
    pub pattern: String,
    pub reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `*` or `:name`.
    One,
}

/// A parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    text: String,
    segments: Vec<Segment>,
    /// Ends in `**`.
    pub(crate) rest: bool,
}

impl Pattern {
    pub(crate) fn parse(text: &str) -> Result<Pattern, PatternError> {
        let refuse = |reason| {
            Err(PatternError {
                pattern: text.to_owned(),
                reason,
            })
        };
        let Some(path) = text.strip_prefix('/') else {
            return refuse("must start with `/`");
        };
        let mut segments = Vec::new();
        let mut rest = false;
        let parts: Vec<&str> = if path.is_empty() {
            Vec::new()
        } else {
            path.split('/').collect()
        };
        for (i, part) in parts.iter().enumerate() {
            if rest {
                return refuse("has `**` before its last segment");
            }
            match *part {
                "" if i + 1 == parts.len() => {} // a trailing `/`
                "" => return refuse("has an empty segment (`//`)"),
                "**" => rest = true,
                "*" => segments.push(Segment::One),
                p if p.starts_with(':') && p.len() > 1 => segments.push(Segment::One),
                p if p.contains('*') => {
                    return refuse("has `*` inside a segment: use `*` or `**` as a whole segment");
                }
                p => segments.push(Segment::Literal(p.to_owned())),
            }
        }
        Ok(Pattern {
            text: text.to_owned(),
            segments,
            rest,
        })
    }

    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// The segments of `path` under a `**`, joined (`""` for none), when the pattern matches.
    pub(crate) fn matches<'p>(&self, path: &[&'p str]) -> Option<Vec<&'p str>> {
        if path.len() < self.segments.len() || (!self.rest && path.len() != self.segments.len()) {
            return None;
        }
        for (segment, part) in self.segments.iter().zip(path) {
            match segment {
                Segment::Literal(literal) if literal != part => return None,
                _ => {}
            }
        }
        Some(path[self.segments.len()..].to_vec())
    }

    /// Less or more specific than `other` (see the module docs).
    pub(crate) fn specificity(&self, other: &Pattern) -> Ordering {
        let weight = |s: &Segment| match s {
            Segment::Literal(_) => 2,
            Segment::One => 1,
        };
        for (a, b) in self.segments.iter().zip(&other.segments) {
            match weight(a).cmp(&weight(b)) {
                Ordering::Equal => {}
                unequal => return unequal,
            }
        }
        self.segments
            .len()
            .cmp(&other.segments.len())
            .then(other.rest.cmp(&self.rest))
    }
}
