//! Alibaba Cloud OpenAPI for ApsaraMQ for MQTT: the request [`signature`] (always built) and,
//! with the `openapi` feature, a client issuing, checking and revoking tokens (`ApplyToken`,
//! `QueryToken`, `RevokeToken`, API version 2020-04-20).

pub mod signature;
