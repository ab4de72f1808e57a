//! The CLI against real container daemons (dockerd, podman) and their clients, in one binary.

#[path = "../common/mod.rs"]
mod common;

mod daemon_engine;
mod daemon_push;
mod docker_clients;
