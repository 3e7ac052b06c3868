//! `POST /api/users`: a JSON body in, `201 Created` with JSON out.

use nitro::{Error, Request, Response, Result};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct NewUser {
    name: String,
}

#[derive(Serialize)]
struct User {
    id: u32,
    name: String,
}

pub fn handler(req: &Request) -> Result<Response> {
    // A body that is not `{"name": "…"}` answers 400 with serde's message.
    let new: NewUser = req.json()?;
    if new.name.trim().is_empty() {
        return Err(Error::bad_request("`name` must not be empty"));
    }
    let user = User { id: 4, name: new.name };
    Ok(Response::json(&user).with_status(201))
}
