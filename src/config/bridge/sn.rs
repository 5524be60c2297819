//! The options of an MQTT-SN bridge (`bridge_type mqttsn`): the multicast group, the PSK,
//! the predefined topic ids, and the checks of [`BridgeDraft::finish`] for such a bridge.

use core::net::SocketAddr;

use super::{derive_ids, fail, ranged, tls_on, BridgeConfig, BridgeDraft, BridgeKind, SnDtls};
use crate::codec::mqtt::topic::valid_topic_name;
use crate::config::predefined::TOPIC_ID_MAX;

impl BridgeDraft {
    /// `bridge_predefined_topic ID TOPIC`, repeated once per topic: an id from 1 to
    /// [`TOPIC_ID_MAX`] and a topic name without wildcards, each given once.
    pub(super) fn predefined_topic(&mut self, values: &[&str]) -> Result<(), String> {
        const KEY: &str = "bridge_predefined_topic";
        let [id, topic] = values else {
            return Err(format!(
                "{KEY}: expected ID TOPIC, got \"{}\"",
                values.join(" ")
            ));
        };
        let id: u16 = ranged(KEY, id, 1, TOPIC_ID_MAX.into())?;
        if !valid_topic_name(topic) {
            return Err(format!(
                "{KEY}: expected a topic name without + or #, got \"{}\"",
                topic.escape_debug()
            ));
        }
        let known = &mut self.sn_draft.predefined;
        if let Some((_, t)) = known.iter().find(|(i, _)| *i == id) {
            return Err(format!("{KEY}: topic id {id} is already \"{t}\""));
        }
        if let Some((i, _)) = known.iter().find(|(_, t)| t == topic) {
            return Err(format!("{KEY}: topic \"{topic}\" already has id {i}"));
        }
        known.push((id, (*topic).to_owned()));
        Ok(())
    }

    /// [`Self::finish`] for `bridge_type mqttsn`: one `address` or, for discovery,
    /// `bridge_multicast_group`; a client id MQTT-SN takes; DTLS by certificates or by PSK.
    pub(super) fn finish_sn(self) -> Result<BridgeConfig, String> {
        let mut config = self.config;
        let (n, group) = (config.addresses.len(), self.sn_draft.multicast_group);
        let id = &config.remote_clientid;
        let why = if let Some(key) = &self.not_sn {
            format!("{key}: not for bridge_type mqttsn")
        } else if n == 0 && group.is_none() {
            let name = &config.name;
            format!("connection: bridge \"{name}\" of bridge_type mqttsn has no address")
        } else if n > 1 || group.is_some() && n == 1 {
            "address: one address, or bridge_multicast_group, for bridge_type mqttsn".to_owned()
        } else if id.is_empty() || id.len() > 23 {
            format!("remote_clientid: MQTT-SN takes 1 to 23 bytes, got \"{id}\"")
        } else {
            String::new()
        };
        if !why.is_empty() {
            return Err(why);
        }
        let mut sn = self.sn_draft;
        sn.predefined.sort_unstable();
        let tls = self.tls;
        let certificates = tls_on(&tls)?;
        sn.dtls = match self.psk {
            (None, None) => certificates.then_some(SnDtls::Certificates(tls)),
            (Some(identity), Some(key)) if !certificates => Some(SnDtls::Psk { identity, key }),
            (Some(_), Some(_)) => return fail("bridge_psk: not with bridge_cafile and friends"),
            _ => return fail("connection: bridge_identity and bridge_psk go together"),
        };
        derive_ids(&mut config, self.local_clientid, self.notification_topic);
        config.kind = BridgeKind::MqttSn(sn);
        Ok(config)
    }
}

/// `bridge_multicast_group ADDRESS:PORT`: a multicast address and a port other than 0.
pub(super) fn group(value: &str) -> Result<SocketAddr, String> {
    const KEY: &str = "bridge_multicast_group";
    match value.parse::<SocketAddr>() {
        Ok(g) if g.ip().is_multicast() && g.port() != 0 => Ok(g),
        _ => Err(format!(
            "{KEY}: expected a multicast ADDRESS:PORT (IPv6 as [ADDRESS]:PORT), got \"{value}\""
        )),
    }
}

/// `bridge_psk HEX`: the key, an even number of hex digits (at most 512).
pub(super) fn hex(v: &str) -> Result<Vec<u8>, String> {
    let pair = |i: usize| u8::from_str_radix(v.get(i..i + 2)?, 16).ok();
    let digits = (2..=512).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_hexdigit());
    let key =
        (digits && v.len().is_multiple_of(2)).then(|| (0..v.len()).step_by(2).map(pair).collect());
    key.flatten()
        .ok_or_else(|| format!("bridge_psk: expected 2 to 512 hex digits, got \"{v}\""))
}

#[cfg(test)]
mod tests;
