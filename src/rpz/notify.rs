//! NOTIFY (RFC 1996) to `rpz.notify`: each secondary is told of every
//! version published, so that it asks for the transfer at once instead of
//! at the SOA refresh.
//!
//! Bounds: one pending notification per zone however fast versions come
//! (the serial sent is the newest); per secondary, [`TRIES`] tries over
//! UDP, the wait doubling from [`FIRST_WAIT`] (RFC 1996 section 3.6: "a
//! NOTIFY request is retransmitted ... until a response is received or
//! retries are exhausted"); a secondary that never answers is logged once
//! per version and counted; the SOA refresh remains its fallback.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, Record, RecordType};
use tokio::net::UdpSocket;
use tracing::{debug, info, warn};

use super::{Event, Rpz};

/// Tries per secondary and version.
pub const TRIES: u32 = 5;
/// The first wait for an answer; doubled at each try (1+2+4+8+16 s).
pub const FIRST_WAIT: Duration = Duration::from_secs(1);

/// Send the NOTIFYs of the zones published, as they are, until dropped.
pub(super) async fn run(rpz: Arc<Rpz>) {
    loop {
        rpz.wake_notifier.notified().await;
        for apex in rpz.take_to_notify() {
            let Some(published) = rpz.zone(&apex) else {
                continue;
            };
            let serial = published.zone.serial;
            let soa = published.zone.soa();
            for &target in &rpz.config().notify {
                let rpz = Arc::clone(&rpz);
                let apex = apex.clone();
                let soa = soa.clone();
                tokio::spawn(async move {
                    let answered = notify(&apex, soa, target).await;
                    match answered {
                        Some(ResponseCode::NoError) => {
                            rpz.count(Event::NotifyAnswered);
                            info!(zone = %apex, serial, secondary = %target, "rpz: NOTIFY answered");
                        }
                        Some(code) => {
                            rpz.count(Event::NotifyAnswered);
                            warn!(zone = %apex, serial, secondary = %target, rcode = %code, "rpz: NOTIFY answered with an error (is Rempart allowed to notify it?)");
                        }
                        None => {
                            rpz.count(Event::NotifyFailed);
                            warn!(zone = %apex, serial, secondary = %target, tries = TRIES, "rpz: NOTIFY not answered; the secondary will see the version at its SOA refresh");
                        }
                    }
                });
            }
        }
    }
}

/// The NOTIFY message of RFC 1996 section 3.7: opcode NOTIFY, AA, the
/// apex SOA as question, and the new SOA in the answer section (a hint
/// the secondary may use to skip its SOA query).
pub fn message(id: u16, apex: &Name, soa: &Record) -> Message {
    let mut m = Message::new(id, MessageType::Query, OpCode::Notify);
    m.metadata.authoritative = true;
    m.add_query(Query::query(apex.clone(), RecordType::SOA));
    m.add_answer(soa.clone());
    m
}

/// Tell `target` that zone `apex` has the SOA `soa`; its response code,
/// or `None` if it never answered.
async fn notify(apex: &Name, soa: Record, target: SocketAddr) -> Option<ResponseCode> {
    let local: SocketAddr = if target.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await.ok()?;
    let mut wait = FIRST_WAIT;
    let mut buf = vec![0u8; 1500];
    for attempt in 1..=TRIES {
        let id = random_id();
        let bytes = message(id, apex, &soa).to_vec().ok()?;
        if let Err(e) = socket.send_to(&bytes, target).await {
            debug!(secondary = %target, error = %e, "rpz: NOTIFY not sent");
        }
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Ok((n, from))) =
            tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await
        {
            if from != target {
                continue;
            }
            let Ok(m) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            if m.metadata.id == id
                && m.metadata.message_type == MessageType::Response
                && m.metadata.op_code == OpCode::Notify
            {
                return Some(m.metadata.response_code);
            }
        }
        debug!(zone = %apex, secondary = %target, attempt, "rpz: NOTIFY not answered yet");
        wait *= 2;
    }
    None
}

/// A message ID not guessable off path (RFC 5452 section 9.2).
fn random_id() -> u16 {
    let mut b = [0u8; 2];
    // A failed draw leaves zeros: the answer is still matched by address.
    let _ = getrandom::fill(&mut b);
    u16::from_be_bytes(b)
}
