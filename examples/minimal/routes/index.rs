//! `/`: the smallest route there is.

pub fn handler() -> &'static str {
    "Hello from nitro!"
}
