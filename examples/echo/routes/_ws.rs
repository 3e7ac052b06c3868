//! An echo endpoint at `/_ws`: every text message comes back as text, every binary message as
//! binary, byte for byte. The Autobahn|Testsuite conformance run (`scripts/autobahn.sh`) talks
//! to it.

use nitro::ws::{Message, Peer};

pub async fn message(peer: Peer, message: Message) {
    peer.send(message);
}
