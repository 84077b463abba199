//! A synchronous rtnetlink socket: one request, its acknowledgement or its dump. No async
//! runtime, no threads; the socket acts in the network namespace the process is in when it
//! is opened.

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::io;

pub struct Nl {
    sock: Socket,
    seq: u32,
}

/// A netlink error with the operation it belongs to.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct NlError {
    pub what: String,
    #[source]
    pub source: io::Error,
}

impl NlError {
    pub fn errno(&self) -> Option<i32> {
        self.source.raw_os_error()
    }
}

pub type NlResult<T> = Result<T, NlError>;

fn err(what: &str) -> impl FnOnce(io::Error) -> NlError + '_ {
    move |source| NlError {
        what: what.to_string(),
        source,
    }
}

impl Nl {
    pub fn open() -> NlResult<Nl> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(err("open a netlink socket"))?;
        sock.bind_auto().map_err(err("bind the netlink socket"))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(err("connect the netlink socket"))?;
        Ok(Nl { sock, seq: 1 })
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16, what: &str) -> NlResult<u32> {
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        self.seq = self.seq.wrapping_add(1);
        header.sequence_number = self.seq;
        let mut m = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        m.finalize();
        let mut buf = vec![0u8; m.buffer_len()];
        m.serialize(&mut buf);
        self.sock.send(&buf, 0).map_err(err(what))?;
        Ok(self.seq)
    }

    /// Receives until the answer to `seq` is complete; returns the inner messages.
    fn collect(&mut self, seq: u32, what: &str) -> NlResult<Vec<RouteNetlinkMessage>> {
        let mut out = Vec::new();
        let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
        loop {
            buf.clear();
            let n = self.sock.recv(&mut buf, 0).map_err(err(what))?;
            let mut off = 0;
            while off < n {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[off..n])
                    .map_err(|e| NlError {
                        what: what.to_string(),
                        source: io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
                    })?;
                let len = msg.header.length as usize;
                off += len.max(16).next_multiple_of(4);
                if msg.header.sequence_number != seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(out),
                            Some(_) => Err(NlError {
                                what: what.to_string(),
                                source: e.to_io(),
                            }),
                        }
                    }
                    NetlinkPayload::InnerMessage(m) => {
                        out.push(m);
                        if msg.header.flags & netlink_packet_core::NLM_F_MULTIPART == 0 {
                            return Ok(out);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// A dump request (`GET*` with `NLM_F_DUMP`).
    pub fn dump(
        &mut self,
        msg: RouteNetlinkMessage,
        what: &str,
    ) -> NlResult<Vec<RouteNetlinkMessage>> {
        let seq = self.send(msg, NLM_F_DUMP, what)?;
        self.collect(seq, what)
    }

    /// A request that changes something; waits for the kernel's acknowledgement.
    pub fn ack(&mut self, msg: RouteNetlinkMessage, what: &str) -> NlResult<()> {
        let seq = self.send(msg, NLM_F_ACK, what)?;
        self.collect(seq, what).map(|_| ())
    }

    /// A `NEW*` request that must create something new (`NLM_F_CREATE | NLM_F_EXCL`).
    pub fn create(&mut self, msg: RouteNetlinkMessage, what: &str) -> NlResult<()> {
        let seq = self.send(msg, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, what)?;
        self.collect(seq, what).map(|_| ())
    }
}
