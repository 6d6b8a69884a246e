//! An async MQTT client on tokio (in progress).
#![forbid(unsafe_code)]
