//! Value types of the configuration: the payment provider, and those serde
//! cannot read alone (IP blocks, listen addresses that may name a host, and
//! secrets that never print).

use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// An IP address or a CIDR block, written `10.0.0.1` or `10.0.0.0/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpBlock(pub ipnet::IpNet);

impl IpBlock {
    pub fn contains(&self, ip: &std::net::IpAddr) -> bool {
        self.0.contains(ip)
    }
}

impl std::str::FromStr for IpBlock {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if let Ok(net) = text.parse::<ipnet::IpNet>() {
            return Ok(IpBlock(net));
        }
        text.parse::<std::net::IpAddr>()
            .map(|ip| IpBlock(ipnet::IpNet::from(ip)))
            .map_err(|_| format!("`{text}` is neither an IP address nor a CIDR block"))
    }
}

/// `host:port` as a socket address: an IP address as written, or a host
/// name resolved now (its first IPv4 address, else its first).
pub fn resolve_addr(text: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err("no port".into());
    };
    if port.parse::<u16>().is_err() {
        return Err(format!("`{port}` is not a port (0 to 65535)"));
    }
    let found: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|e| format!("the host name `{host}` could not be resolved ({e})"))?
        .collect();
    found
        .iter()
        .find(|a| a.is_ipv4())
        .or(found.first())
        .copied()
        .ok_or_else(|| format!("the host name `{host}` has no address"))
}

pub(super) fn deserialize_addr<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    resolve_addr(&text).map_err(serde::de::Error::custom)
}

impl<'de> Deserialize<'de> for IpBlock {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for IpBlock {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

/// A string that never prints: `Debug` and `Serialize` show a mask, so
/// `wemaster config` and logs cannot leak it.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "\"********\""
        })
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(if self.0.is_empty() { "" } else { "********" })
    }
}

/// Who takes the money: `dev` (pages served by this binary, no network) or
/// `stripe` (Stripe Checkout). Chosen by `payments.provider` in wemaster.toml
/// and stored on every order and payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, poem_openapi::Enum)]
#[serde(rename_all = "lowercase")]
#[oai(rename_all = "lowercase")]
pub enum PaymentProvider {
    Dev,
    Stripe,
}

impl PaymentProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentProvider::Dev => "dev",
            PaymentProvider::Stripe => "stripe",
        }
    }
}

impl rusqlite::types::ToSql for PaymentProvider {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl rusqlite::types::FromSql for PaymentProvider {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        match value.as_str()? {
            "dev" => Ok(PaymentProvider::Dev),
            "stripe" => Ok(PaymentProvider::Stripe),
            other => Err(rusqlite::types::FromSqlError::Other(
                format!("unknown payment provider {other:?}").into(),
            )),
        }
    }
}
