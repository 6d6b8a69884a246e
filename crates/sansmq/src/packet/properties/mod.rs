//! MQTT 5 properties (MQTT 5.0 section 2.2.2): the optional, typed fields an MQTT 5 packet carries
//! after its variable header, and the rules for which packet may carry which.

mod id;

pub use self::id::{PropertyContext, PropertyId};
