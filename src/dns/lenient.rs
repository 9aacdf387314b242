//! A TXT question asked again, without hickory-resolver, for the one answer it refuses whole:
//! a TXT record with zero-length RDATA (RFC 1035 §3.3.14 wants at least one character-string,
//! but such records are published) beside valid ones. hickory-proto reads zero-length RDATA as
//! an update prerequisite and rejects the message (`DecodeError::InvalidEmptyRecord`), so SPF
//! said temperror for a domain whose record other verifiers read. Here the header, question
//! and owner names are still decoded by hickory-proto; only the records' RDATA is read by us,
//! each octet once, with a zero-length TXT record read as an empty one.
//!
//! Only a UDP answer gets here: over TCP hickory drops such an answer silently and the question
//! times out, so a TXT answer too big for UDP that holds a zero-length record stays a
//! temporary failure.
//!
//! Bounds: one UDP exchange (and one TCP exchange when the answer is truncated) per server,
//! within the time the caller gives; an answer of at most 65,535 octets.

use hickory_resolver::proto::op::{Edns, Header, Message, MessageType, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RecordType};
use hickory_resolver::proto::serialize::binary::{BinDecodable, BinDecoder, DecodeError};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// What the servers said about the TXT records of a name.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Lenient {
    Records(Vec<Vec<u8>>),
    /// NXDOMAIN.
    NoName,
    /// No TXT record in the answer.
    NoData,
    TempFail(String),
}

/// Asks `servers` in turn until one answers, before `until`.
pub(crate) fn txt(servers: &[SocketAddr], name: &Name, until: Instant) -> Lenient {
    let mut last = String::from("no DNS server");
    for &server in servers {
        match ask(server, name, until) {
            Ok(answer) => return answer,
            Err(e) => last = format!("{server}: {e}"),
        }
    }
    Lenient::TempFail(last)
}

fn left(until: Instant) -> Result<Duration, String> {
    until.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()).ok_or_else(|| "no answer in time".to_string())
}

fn ask(server: SocketAddr, name: &Name, until: Instant) -> Result<Lenient, String> {
    let mut q = Message::query();
    q.metadata.recursion_desired = true;
    q.add_query(Query::query(name.clone(), RecordType::TXT));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    q.set_edns(edns);
    let id = q.metadata.id;
    let wire = q.to_vec().map_err(|e| e.to_string())?;
    let io = |e: std::io::Error| e.to_string();

    let local: SocketAddr = if server.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let udp = UdpSocket::bind(local).map_err(io)?;
    udp.connect(server).map_err(io)?;
    udp.send(&wire).map_err(io)?;
    let mut buf = vec![0u8; 65_535];
    let n = loop {
        udp.set_read_timeout(Some(left(until)?)).map_err(io)?;
        let n = udp.recv(&mut buf).map_err(io)?;
        // Anything but the answer to our question (by its id) is not for us.
        if buf.get(..2) == Some(&id.to_be_bytes()[..]) {
            break n;
        }
    };
    if let Some(answer) = read_answer(&buf[..n], id)? {
        return Ok(answer);
    }
    // Truncated: the whole answer over TCP.
    let mut tcp = TcpStream::connect_timeout(&server, left(until)?).map_err(io)?;
    tcp.set_write_timeout(Some(left(until)?)).map_err(io)?;
    let len = u16::try_from(wire.len()).map_err(|_| "question too long".to_string())?;
    tcp.write_all(&[&len.to_be_bytes()[..], &wire].concat()).map_err(io)?;
    tcp.set_read_timeout(Some(left(until)?)).map_err(io)?;
    let mut len = [0u8; 2];
    tcp.read_exact(&mut len).map_err(io)?;
    let answer = &mut buf[..usize::from(u16::from_be_bytes(len))];
    tcp.read_exact(answer).map_err(io)?;
    read_answer(answer, id)?.ok_or_else(|| "truncated answer over TCP".to_string())
}

/// Reads an answer to question `id`; `None` when it is truncated.
pub(crate) fn read_answer(answer: &[u8], id: u16) -> Result<Option<Lenient>, String> {
    let bad = |e: DecodeError| format!("malformed answer: {e}");
    let mut d = BinDecoder::new(answer);
    let header = Header::read(&mut d).map_err(bad)?;
    let m = &header.metadata;
    if m.id != id || m.message_type != MessageType::Response {
        return Err("not the answer to our question".into());
    }
    if m.truncation {
        return Ok(None);
    }
    match m.response_code {
        ResponseCode::NoError => {}
        ResponseCode::NXDomain => return Ok(Some(Lenient::NoName)),
        rc => return Err(format!("server says {rc}")),
    }
    for _ in 0..header.counts.queries {
        Query::read(&mut d).map_err(bad)?;
    }
    let mut records = Vec::new();
    for _ in 0..header.counts.answers {
        Name::read(&mut d).map_err(bad)?;
        let rtype = d.read_u16().map_err(bad)?.unverified(/* any type: only TXT is kept */);
        d.read_u16().map_err(bad)?; // class
        d.read_u32().map_err(bad)?; // TTL
        let len = d.read_u16().map_err(bad)?.unverified(/* read_slice checks it against the rest */);
        let rdata = d.read_slice(usize::from(len)).map_err(bad)?.unverified(/* read below, bounded by len */);
        if RecordType::from(rtype) == RecordType::TXT {
            records.push(character_strings(rdata).ok_or("malformed TXT record")?);
        }
    }
    Ok(Some(if records.is_empty() { Lenient::NoData } else { Lenient::Records(records) }))
}

/// The character-strings of TXT RDATA, concatenated (none for zero-length RDATA).
fn character_strings(mut rdata: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(rdata.len());
    while let Some((&n, rest)) = rdata.split_first() {
        let s = rest.get(..usize::from(n))?;
        out.extend_from_slice(s);
        rdata = &rest[usize::from(n)..];
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer to question 7 for `a.example` TXT: a header, the question, and one record per
    /// RDATA, each owned by the question's name (a compression pointer).
    fn answer(rcode: u8, tc: bool, rdatas: &[Vec<u8>]) -> Vec<u8> {
        let mut m = vec![0, 7, 0x81 | if tc { 2 } else { 0 }, 0x80 | rcode, 0, 1];
        m.extend_from_slice(&u16::try_from(rdatas.len()).unwrap().to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 0]);
        m.extend_from_slice(b"\x01a\x07example\x00\x00\x10\x00\x01");
        for r in rdatas {
            m.extend_from_slice(&[0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60]);
            m.extend_from_slice(&u16::try_from(r.len()).unwrap().to_be_bytes());
            m.extend_from_slice(r);
        }
        m
    }

    #[test]
    fn zero_length_txt_record_beside_a_valid_one_is_read() {
        let a = answer(0, false, &[b"\x0bv=spf1 ip4:\x0e192.0.2.5 -all".to_vec(), Vec::new()]);
        // hickory refuses the whole answer.
        assert!(Message::from_vec(&a).is_err());
        assert_eq!(
            read_answer(&a, 7),
            Ok(Some(Lenient::Records(vec![b"v=spf1 ip4:192.0.2.5 -all".to_vec(), Vec::new()])))
        );
        assert_eq!(read_answer(&answer(3, false, &[]), 7), Ok(Some(Lenient::NoName)));
        assert_eq!(read_answer(&answer(0, false, &[]), 7), Ok(Some(Lenient::NoData)));
        assert_eq!(read_answer(&answer(0, true, &[]), 7), Ok(None));
        assert!(read_answer(&answer(2, false, &[]), 7).is_err());
        assert!(read_answer(&answer(0, false, &[]), 8).is_err());
        // A character-string running past its record, a record running past the answer.
        assert!(read_answer(&answer(0, false, &[b"\x05abc".to_vec()]), 7).is_err());
        let mut cut = answer(0, false, &[b"\x03abc".to_vec()]);
        cut.truncate(cut.len() - 1);
        assert!(read_answer(&cut, 7).is_err());
    }

    #[test]
    fn answers_of_many_records_are_read_in_linear_time() {
        crate::linear::assert_linear(
            "lenient TXT answer of many records",
            64,
            |n| {
                // n octets of records: up to 4,000 records, each of 255-octet strings.
                let records = (n / 64).clamp(1, 4_000);
                let one = n / records;
                let rdata: Vec<u8> =
                    (0..one.div_ceil(256)).flat_map(|_| [&[255u8][..], &[b'x'; 255]].concat()).collect();
                let mut rdatas = vec![rdata; records];
                rdatas.push(Vec::new());
                answer(0, false, &rdatas)
            },
            |a| {
                assert!(matches!(read_answer(a, 7), Ok(Some(Lenient::Records(_)))));
            },
        );
    }
}
