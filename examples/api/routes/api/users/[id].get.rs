//! `GET /api/users/:id`: a route param, and errors with a status.

use nitro::{Error, Request, Result, Value, json};

const USERS: [&str; 3] = ["Ada", "Grace", "Linus"];

pub fn handler(req: &Request) -> Result<Value> {
    let id: usize = req
        .param("id")
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| Error::bad_request("`id` must be a number"))?;
    let Some(name) = id.checked_sub(1).and_then(|i| USERS.get(i)) else {
        return Err(Error::not_found(format!("there is no user {id}")).with_data(json!({ "id": id })));
    };
    Ok(json!({ "id": id, "name": name }))
}
