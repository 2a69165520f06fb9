//! A web dashboard under test: one browser and its agents at a time, the `[api]` table of a
//! dashboard on loopback, waiting for it to answer, and a device with one.

use std::net::SocketAddr;
use std::sync::Mutex;

use crate::node::{Agent, Node, QUIET, eventually};
use crate::web::request;

/// One browser and its agents at a time: they share two cores with the rest.
static TURN: Mutex<()> = Mutex::new(());

pub fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `[api]` table of a dashboard on loopback `port`.
pub fn web_table(port: u16) -> String {
    format!("[api]\nweb = \"127.0.0.1:{port}\"\n")
}

/// Wait until the dashboard on `port` answers.
pub fn wait_dashboard(port: u16, context: impl Fn() -> String) {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    eventually(
        "the dashboard answers",
        60,
        || {
            request(addr, "GET", "/", &format!("127.0.0.1:{port}"), &[], None)
                .is_ok_and(|a| a.status == 200)
        },
        context,
    );
}

/// A device with space `home` and its dashboard on loopback `port`, started and converged.
pub fn device_with_a_space(dir: &std::path::Path, name: &str, port: u16) -> (Node, Agent) {
    let node = Node::new(dir, name);
    node.write_config(&format!(
        "[network]\n{QUIET}{}[[space]]\nname = \"home\"\n",
        web_table(port)
    ));
    let agent = node.start();
    node.wait_converged(60);
    wait_dashboard(port, || node.log());
    (node, agent)
}
