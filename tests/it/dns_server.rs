//! A DNS server on loopback for tests: invented domains with MX, A, AAAA, TXT and PTR records
//! (and names that answer SERVFAIL), answered over UDP with the resolver's own wire format (hickory-proto). `[dns] nameservers`
//! points the server under test at it.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use hickory_resolver::proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, AAAA, MX, PTR, TXT};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use tokio::net::UdpSocket;

#[derive(Clone, Default)]
pub struct Zone(
    Arc<Mutex<HashMap<String, Vec<RData>>>>,
    /// Names answered with SERVFAIL.
    Arc<Mutex<HashSet<String>>>,
    /// Names never answered (the client times out).
    Arc<Mutex<HashSet<String>>>,
);

impl Zone {
    fn add(&self, name: &str, data: RData) {
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        self.0.lock().unwrap().entry(key).or_default().push(data);
    }
    pub fn mx(&self, domain: &str, preference: u16, host: &str) {
        let exchange = Name::from_ascii(format!("{}.", host.trim_end_matches('.'))).unwrap();
        self.add(domain, RData::MX(MX::new(preference, exchange)));
    }
    /// The null MX of RFC 7505.
    pub fn null_mx(&self, domain: &str) {
        self.add(domain, RData::MX(MX::new(0, Name::root())));
    }
    pub fn ip(&self, host: &str, ip: IpAddr) {
        match ip {
            IpAddr::V4(v4) => self.add(host, RData::A(A(v4))),
            IpAddr::V6(v6) => self.add(host, RData::AAAA(AAAA(v6))),
        }
    }
    pub fn txt(&self, name: &str, text: &str) {
        // Split into 255-byte character-strings, as a zone file would.
        let parts = text
            .as_bytes()
            .chunks(255)
            .map(|c| String::from_utf8_lossy(c).to_string())
            .collect();
        self.add(name, RData::TXT(TXT::new(parts)));
    }

    /// The PTR record of `ip` (at its `in-addr.arpa`/`ip6.arpa` name) naming `host`.
    pub fn ptr(&self, ip: IpAddr, host: &str) {
        let target = Name::from_ascii(format!("{}.", host.trim_end_matches('.'))).unwrap();
        self.add(&mailroom::dns::reverse_name(ip), RData::PTR(PTR(target)));
    }
    /// Queries for `name` (any type) fail with SERVFAIL.
    pub fn servfail(&self, name: &str) {
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        self.1.lock().unwrap().insert(key);
    }

    /// Queries for `name` (any type) get no answer at all.
    pub fn silent(&self, name: &str) {
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        self.2.lock().unwrap().insert(key);
    }

    fn answer(&self, query: &[u8]) -> Option<Vec<u8>> {
        let request = Message::from_vec(query).ok()?;
        let question = request.queries.first()?.clone();
        let mut response = Message::response(request.metadata.id, OpCode::Query);
        response.metadata.message_type = MessageType::Response;
        response.metadata.recursion_desired = request.metadata.recursion_desired;
        response.metadata.recursion_available = true;
        response.metadata.authoritative = true;
        response.add_query(question.clone());
        let key = question
            .name()
            .to_ascii()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if self.2.lock().unwrap().contains(&key) {
            return None;
        }
        let zone = self.0.lock().unwrap();
        if self.1.lock().unwrap().contains(&key) {
            response.metadata.response_code = ResponseCode::ServFail;
            return response.to_vec().ok();
        }
        match zone.get(&key) {
            None => response.metadata.response_code = ResponseCode::NXDomain,
            Some(records) => {
                for data in records {
                    if data.record_type() == question.query_type()
                        || question.query_type() == RecordType::ANY
                    {
                        response.add_answer(Record::from_rdata(
                            question.name().clone(),
                            60,
                            data.clone(),
                        ));
                    }
                }
            }
        }
        response.to_vec().ok()
    }
}

/// Starts the server; its address goes into `[dns] nameservers`.
pub async fn start(zone: Zone) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                return;
            };
            if let Some(reply) = buf.get(..n).and_then(|q| zone.answer(q)) {
                let _ = socket.send_to(&reply, peer).await;
            }
        }
    });
    addr
}
