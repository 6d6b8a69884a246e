//! How packets hold their properties: boxed, and nothing at all for an empty set, so that MQTT 3.1.1
//! packets and MQTT 5 packets without properties stay as small as they were.

use std::fmt;

use bytes::BytesMut;

use super::{Properties, PropertyContext};
use crate::packet::EncodeError;

/// The empty set every packet without properties hands out.
pub(crate) static NO_PROPERTIES: Properties = Properties::new();

/// A packet's properties; see [`Properties`].
#[derive(Clone, Default)]
pub(crate) struct HeldProperties(Option<Box<Properties>>);

impl HeldProperties {
    /// No properties.
    pub(crate) const EMPTY: Self = Self(None);

    /// Holds `properties`, allocating only when there is at least one.
    pub(crate) fn new(properties: Properties) -> Self {
        if properties.is_empty() {
            Self(None)
        } else {
            Self(Some(Box::new(properties)))
        }
    }

    pub(crate) fn get(&self) -> &Properties {
        self.0.as_deref().unwrap_or(&NO_PROPERTIES)
    }

    /// The boxed set, `None` when there is none.
    #[inline]
    pub(crate) fn as_boxed(&self) -> Option<&Properties> {
        self.0.as_deref()
    }

    pub(crate) fn get_mut(&mut self) -> &mut Properties {
        self.0.get_or_insert_with(Box::default)
    }

    pub(crate) fn into_inner(self) -> Properties {
        self.0.map(|boxed| *boxed).unwrap_or_default()
    }

    /// Takes the boxed set out, leaving none; `None` when there is none, without building one.
    pub(crate) fn take_boxed(&mut self) -> Option<Box<Properties>> {
        self.0.take().filter(|properties| !properties.is_empty())
    }

    pub(crate) fn take(&mut self) -> Properties {
        self.0.take().map(|boxed| *boxed).unwrap_or_default()
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.0
            .as_ref()
            .is_none_or(|properties| properties.is_empty())
    }

    /// The section's size on the wire, Property Length included.
    pub(crate) fn encoded_len(&self) -> usize {
        match &self.0 {
            None => 1,
            Some(properties) => properties.encoded_len(),
        }
    }

    pub(crate) fn validate(&self, context: PropertyContext) -> Result<(), EncodeError> {
        match &self.0 {
            None => Ok(()),
            Some(properties) => properties.validate_in_packet(context),
        }
    }

    /// Writes the section; [`validate`](Self::validate) has accepted it.
    pub(crate) fn write(&self, buf: &mut BytesMut) {
        match &self.0 {
            None => bytes::BufMut::put_u8(buf, 0),
            Some(properties) => properties.write(buf),
        }
    }
}

impl PartialEq for HeldProperties {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Eq for HeldProperties {}

impl fmt::Debug for HeldProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

/// Gives a packet type that holds [`HeldProperties`] in a field named `properties` its public
/// accessors.
macro_rules! impl_properties {
    ($ty:ty, $context:expr) => {
        impl $ty {
            /// The packet's MQTT 5 properties; empty for MQTT 3.1.1.
            #[inline]
            pub fn properties(&self) -> &$crate::packet::Properties {
                self.properties.get()
            }

            /// The properties, to change; an MQTT 3.1.1 packet must leave them empty.
            pub fn properties_mut(&mut self) -> &mut $crate::packet::Properties {
                self.properties.get_mut()
            }

            /// Replaces the properties.
            pub fn set_properties(&mut self, properties: $crate::packet::Properties) {
                self.properties = $crate::packet::properties::HeldProperties::new(properties);
            }

            /// The packet with `properties`.
            #[must_use]
            pub fn with_properties(mut self, properties: $crate::packet::Properties) -> Self {
                self.set_properties(properties);
                self
            }

            /// Takes the properties out, leaving none.
            pub fn take_properties(&mut self) -> $crate::packet::Properties {
                self.properties.take()
            }

            /// The context this packet's properties and Reason Code are checked in.
            pub const PROPERTY_CONTEXT: $crate::packet::PropertyContext = $context;
        }
    };
}
pub(crate) use impl_properties;
