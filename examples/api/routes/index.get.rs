//! `GET /`: what this API offers.

use nitro::{Value, json};

pub fn handler() -> Value {
    json!({
        "name": "nitro api example",
        "routes": ["GET /api/users/:id", "POST /api/users"],
    })
}
